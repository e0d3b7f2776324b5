// device-link.json: linking a device and the account-key backup (PROTOCOL.md §4.1, §4.2):
// link codes, device claims (signed by the device key at a fixed time) and backups sealed under
// an export key; Ed25519 signatures are re-verified with OpenSSL.
import {
  concat,
  decodeDeviceClaim,
  decodeLinkCode,
  encodeLinkCode,
  generateAccountKey,
  generateDevice,
  kdf,
  LABEL,
  openAccountBackup,
  publicPart,
  sealAccountBackup,
  seededRng,
  SIG_CONTEXT,
  signDeviceClaim,
  verifyDeviceClaim,
} from '../../../crypto/index.ts';
import { applyEdit, errorCode, hex, In, seedHex, type Tally, type Topic, type VectorCase, xorEdit } from './core.ts';
import { ed25519Verify } from './independent.ts';
import { deviceJson, devicePublicJson, draws, labelPrefix } from './parts.ts';

/** The relay's claim window (relay/routes/devices.ts CLAIM_WINDOW_MS), recorded in each claim case as `window`. */
const WINDOW = 300_000;

function u64(v: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(v));
  return b;
}

export const deviceLinkTopic: Topic = {
  file: 'device-link.json',
  description:
    'Linking and backup. rng = seededRng(seed); device = generateDevice(rng). linkCode = 0x02 || signingKey || dhKey || deviceId[0..4] ' +
    '(the check: a code whose last 4 bytes are not the start of the id derived from its keys is refused with malformed; version 1, without it, with unknown_version). ' +
    'claim = 0x01 || deviceId || u64(timestamp) || Ed25519(signingSecret, L("Petrel/v1/sig/device-claim") || 0x01 || deviceId || u64(timestamp)), ' +
    'verified at time `now` against the device (or, with checkedAgainstSeed, against the device generateDevice(seededRng(checkedAgainstSeed))): ' +
    'refused with invalid_argument when |now - timestamp| > window (inclusive window; the relay uses 300,000 ms), then bad_signature when the ' +
    'signature or the device id does not match the device checked against. Backup: account = generateAccountKey(rng), exportKey = rng(64), ' +
    'k = KDF("Petrel/v1/account-backup", exportKey, 32), backup = 0x01 || nonce (rng(24)) || XChaCha20-Poly1305(k, nonce, accountSecretKey, ad = 0x01), ' +
    'so the draws are: account seed (32), exportKey (64), nonce (24). Negative cases: an edited claim or backup, a stale claim, a claim checked ' +
    'against another device, a backup opened with another export key (exportKey edited by editExportKey), a link code of version 1, a link code with one changed key byte or check byte.',
  spec: 'crypto/PROTOCOL.md §4.1, §4.2',
  cases() {
    const link1 = seedHex('Petrel test vectors: link 1');
    const link2 = seedHex('Petrel test vectors: link 2');
    const backup1 = seedHex('Petrel test vectors: backup 1');
    return [
      { name: 'link code and claim, seed 1', input: { seed: link1, timestamp: 1_795_000_000_000, now: 1_795_000_060_000, window: WINDOW } },
      { name: 'link code and claim, seed 2', input: { seed: link2, timestamp: 1_700_000_000_000, now: 1_700_000_000_000, window: WINDOW } },
      { name: 'stale claim', input: { seed: link1, timestamp: 1_795_000_000_000, now: 1_795_000_300_001, window: WINDOW }, expect: 'invalid_argument' },
      { name: 'claim with a flipped signature bit', input: { seed: link1, timestamp: 1_795_000_000_000, now: 1_795_000_000_000, editClaim: xorEdit(40, 0x01), window: WINDOW }, expect: 'bad_signature' },
      { name: 'link code of version 1', input: { seed: link1, editCode: xorEdit(0, 0x03) }, expect: 'unknown_version' },
      { name: 'backup, seed 1', input: { backupSeed: backup1 } },
      { name: 'backup with a flipped ciphertext bit', input: { backupSeed: backup1, editBackup: xorEdit(30, 0x80) }, expect: 'decrypt_failed' },
      { name: 'claim at the edge of the window', input: { seed: link1, timestamp: 1_795_000_000_000, now: 1_795_000_300_000, window: WINDOW } },
      { name: 'claim from the future, just outside the window', input: { seed: link1, timestamp: 1_795_000_000_000, now: 1_794_999_699_999, window: WINDOW }, expect: 'invalid_argument' },
      { name: 'claim checked against another device', input: { seed: link1, timestamp: 1_795_000_000_000, now: 1_795_000_000_000, window: WINDOW, checkedAgainstSeed: link2 }, expect: 'bad_signature' },
      { name: 'link code with a changed key byte (a typo)', input: { seed: link1, editCode: xorEdit(20, 0x01) }, expect: 'malformed' },
      { name: 'link code with a changed check byte', input: { seed: link1, editCode: xorEdit(68, 0x80) }, expect: 'malformed' },
      { name: 'backup opened with another export key', input: { backupSeed: backup1, editExportKey: xorEdit(63, 0x01) }, expect: 'decrypt_failed' },
    ];
  },
  compute(c) {
    const i = In.of(c.input, 'input');
    if (i.has('backupSeed')) {
      const rng = seededRng(i.hex('backupSeed'));
      const account = generateAccountKey(rng);
      const exportKey = rng(64);
      const backup = sealAccountBackup(exportKey, account.secretKey, rng);
      const edited = i.has('editBackup') ? applyEdit(backup, i.obj('editBackup')) : backup;
      const out = { accountSecretKey: hex(account.secretKey), exportKey: hex(exportKey), backupKey: hex(kdf(LABEL.backup, exportKey, 32)), backup: hex(edited) };
      if (i.has('editBackup')) return { output: { ...out, error: errorCode(() => openAccountBackup(exportKey, edited)) } };
      if (i.has('editExportKey')) {
        const other = applyEdit(exportKey, i.obj('editExportKey'));
        return { output: { ...out, openedWith: hex(other), error: errorCode(() => openAccountBackup(other, edited)) } };
      }
      return { output: { ...out, opened: hex(openAccountBackup(exportKey, edited)) } };
    }
    const device = generateDevice(seededRng(i.hex('seed')));
    const code = encodeLinkCode(device);
    if (i.has('editCode')) {
      const edited = applyEdit(code, i.obj('editCode'));
      return { output: { linkCode: hex(edited), error: errorCode(() => decodeLinkCode(edited)) } };
    }
    const claim = signDeviceClaim(device, i.num('timestamp'));
    const edited = i.has('editClaim') ? applyEdit(claim, i.obj('editClaim')) : claim;
    const against = i.has('checkedAgainstSeed') ? generateDevice(seededRng(i.hex('checkedAgainstSeed'))) : device;
    const error = errorCode(() => verifyDeviceClaim(decodeDeviceClaim(edited), publicPart(against), i.num('now'), i.num('window')));
    return {
      output: {
        device: deviceJson(device),
        linkCode: hex(code),
        linkCodeDeviceId: hex(decodeLinkCode(code).deviceId),
        claim: hex(edited),
        ...(against !== device ? { checkedAgainst: devicePublicJson(against) } : {}),
        ...(error !== 'none' ? { error } : { verified: true }),
      },
    };
  },
  crossCheck(c: VectorCase, _kept, t: Tally) {
    const o = In.of(c.output, 'output');
    if (o.has('exportKey')) {
      // Draw order: account seed (32), exportKey (64), nonce (24); the nonce is backup[1..25].
      const [seed, exportKey, nonce] = draws(In.of(c.input, 'input').hex('backupSeed'), [32, 64, 24]) as [Uint8Array, Uint8Array, Uint8Array];
      t.bytes(o.hex('accountSecretKey').subarray(0, 32), seed, 'account seed is the first draw');
      t.bytes(o.hex('exportKey'), exportKey, 'exportKey is the second draw (64 bytes)');
      t.bytes(o.hex('backup').subarray(1, 25), nonce, 'nonce is the third draw');
    }
    if (o.has('linkCodeDeviceId')) {
      const code = o.hex('linkCode');
      const d = o.obj('device');
      t.bytes(code, concat(new Uint8Array([2]), d.hex('signingKey'), d.hex('dhKey'), d.hex('deviceId').subarray(0, 4)), 'link code is 0x02 || keys || deviceId[0..4]');
    }
    if (!o.has('claim') || o.has('error')) return;
    const claim = o.hex('claim');
    const d = o.obj('device');
    const deviceId = claim.subarray(1, 17);
    const body = concat(labelPrefix(SIG_CONTEXT.deviceClaim), new Uint8Array([1]), deviceId, claim.subarray(17, 25));
    t.expect(ed25519Verify(claim.subarray(25), body, d.hex('signingKey')), 'claim signature verifies with OpenSSL');
    t.bytes(deviceId, d.hex('deviceId'), 'claim names the device');
    t.bytes(claim.subarray(17, 25), u64(In.of(c.input, 'input').num('timestamp')), 'claim carries the timestamp as u64');
  },
};
