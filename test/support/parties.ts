// Test helpers: a "party" is one device of one user with its prekeys held in memory, as the
// client engine keeps them in storage. Built only from crypto/'s public API.
import {
  type AccountKeyPair,
  type DeviceKeyPair,
  type DevicePublic,
  type DeviceSessions,
  EMPTY_DEVICE_SESSIONS,
  generateAccountKey,
  generateDevice,
  generatePrekey,
  type PrekeyBundle,
  PrekeyKind,
  type PrekeyLookup,
  type PrekeySecret,
  publicPart,
  type Rng,
} from '../../crypto/index.ts';

export interface Party {
  name: string;
  account: AccountKeyPair;
  device: DeviceKeyPair;
  pub: DevicePublic;
  prekeys: Map<string, PrekeySecret>;
  bundles: PrekeyBundle[];
  lookup: PrekeyLookup;
  sessions: Map<string, DeviceSessions>;
}

export function makeParty(name: string, rng: Rng, oneTime = 4, account?: AccountKeyPair): Party {
  const acct = account ?? generateAccountKey(rng);
  const device = generateDevice(rng);
  const prekeys = new Map<string, PrekeySecret>();
  const keep = (p: { secret: PrekeySecret }) => prekeys.set(`${p.secret.kind}/${p.secret.id}`, p.secret);
  const spk = generatePrekey(device, PrekeyKind.signed, 1, rng);
  const last = generatePrekey(device, PrekeyKind.pqLastResort, 1000, rng);
  keep(spk);
  keep(last);
  const bundles: PrekeyBundle[] = [];
  for (let i = 0; i < oneTime; i++) {
    const otk = generatePrekey(device, PrekeyKind.oneTime, 100 + i, rng);
    const pq = generatePrekey(device, PrekeyKind.pqOneTime, 200 + i, rng);
    keep(otk);
    keep(pq);
    bundles.push({ deviceId: device.deviceId, signedPrekey: spk.public, pqPrekey: pq.public, oneTimePrekey: otk.public });
  }
  // Once one-time keys run out: the last-resort PQ key and no X25519 one-time key.
  bundles.push({ deviceId: device.deviceId, signedPrekey: spk.public, pqPrekey: last.public, oneTimePrekey: null });
  return {
    name,
    account: acct,
    device,
    pub: publicPart(device),
    prekeys,
    bundles,
    lookup: (kind, id) => prekeys.get(`${kind}/${id}`),
    sessions: new Map(),
  };
}

/** Takes the next bundle like a relay would: one-time keys first, the last-resort one forever after. */
export function takeBundle(p: Party): PrekeyBundle {
  return p.bundles.length > 1 ? p.bundles.shift()! : p.bundles[0]!;
}

export function sessionsWith(p: Party, other: Party): DeviceSessions {
  return p.sessions.get(other.name) ?? EMPTY_DEVICE_SESSIONS;
}
