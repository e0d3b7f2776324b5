// identity.json: the account key and a device's keys and id from a seed (PROTOCOL.md §3).
// Draw order: account Ed25519 seed = rng(32); device Ed25519 seed = rng(32); device X25519 secret = rng(32).
import {
  accountKeyFromSecret,
  decodeDeviceKeyPair,
  deriveDeviceId,
  devicePublic,
  encodeDeviceKeyPair,
  generateAccountKey,
  generateDevice,
  seededRng,
} from '../../../crypto/index.ts';
import { applyEdit, earlierCase, errorCode, hex, In, seedHex, type Tally, type Topic, type VectorCase, xorEdit } from './core.ts';
import { ed25519Public, x25519Public } from './independent.ts';
import { deviceJson, draws } from './parts.ts';

type Kept = ReturnType<typeof generateDevice>;

export const identityTopic: Topic = {
  file: 'identity.json',
  description:
    'Identities from a seed: rng = seededRng(seed); account Ed25519 key from seed rng(32); device Ed25519 key from seed rng(32), ' +
    'device X25519 secret rng(32), public X25519(secret, 9); deviceId = KDF("Petrel/v1/device-id", signingKey || dhKey, 16). ' +
    'accountSecretKey is libsodium\'s 64-byte form (seed || public key); deviceKeys is the stored DeviceKeyPair encoding. ' +
    'Negative cases: a device id that does not match its keys (identity_mismatch), an account secret of the wrong length.',
  spec: 'crypto/PROTOCOL.md §3, §10.2 (DeviceKeyPair)',
  cases() {
    return [
      { name: 'account and device from seed 1', input: { seed: seedHex('Petrel test vectors: identity 1') } },
      { name: 'account and device from seed 2', input: { seed: seedHex('Petrel test vectors: identity 2') } },
      { name: 'account and device from a 16-byte seed', input: { seed: seedHex('Petrel identity3') } },
      {
        name: 'device id that does not match its keys',
        input: { from: 'account and device from seed 1', editDeviceId: xorEdit(0, 0x80) },
        expect: 'identity_mismatch',
      },
      { name: 'account secret of 63 bytes', input: { accountSecretLength: 63 }, expect: 'invalid_argument' },
    ];
  },
  compute(c, earlier) {
    const i = In.of(c.input, 'input');
    if (i.has('accountSecretLength')) {
      return { output: { error: errorCode(() => accountKeyFromSecret(new Uint8Array(i.num('accountSecretLength')))) } };
    }
    if (i.has('from')) {
      const d = earlierCase<Kept>(earlier, i.str('from'));
      const deviceId = applyEdit(d.deviceId, i.obj('editDeviceId'));
      return { output: { deviceId: hex(deviceId), error: errorCode(() => devicePublic(deviceId, d.signingKey, d.dhKey)) } };
    }
    const rng = seededRng(i.hex('seed'));
    const account = generateAccountKey(rng);
    const device = generateDevice(rng);
    return {
      output: {
        accountSeed: hex(account.secretKey.subarray(0, 32)),
        accountPublicKey: hex(account.publicKey),
        accountSecretKey: hex(account.secretKey),
        device: deviceJson(device),
        deviceKeys: hex(encodeDeviceKeyPair(device)),
      },
      keep: device,
    };
  },
  crossCheck(c: VectorCase, _kept, t: Tally) {
    const o = In.of(c.output, 'output');
    if (!o.has('device')) return;
    const d = o.obj('device');
    // OpenSSL derives the same public keys from the recorded secrets.
    t.bytes(o.hex('accountPublicKey'), ed25519Public(o.hex('accountSeed')), 'account public key vs OpenSSL');
    t.bytes(d.hex('signingKey'), ed25519Public(d.hex('signingSeed')), 'device signing key vs OpenSSL');
    t.bytes(d.hex('dhKey'), x25519Public(d.hex('dhSecret')), 'device X25519 key vs OpenSSL');
    t.bytes(d.hex('deviceId'), deriveDeviceId(d.hex('signingKey'), d.hex('dhKey')), 'deviceId from the recorded keys');
    t.bytes(o.hex('accountPublicKey'), accountKeyFromSecret(o.hex('accountSecretKey')).publicKey, 'account key from its recorded secret');
    // The recorded DeviceKeyPair decodes to the recorded keys.
    const [accountSeed, signingSeed, dhSecret] = draws(In.of(c.input, 'input').hex('seed'), [32, 32, 32]);
    t.bytes(o.hex('accountSeed'), accountSeed!, 'accountSeed is the first rng draw');
    t.bytes(d.hex('signingSeed'), signingSeed!, 'signingSeed is the second rng draw');
    t.bytes(d.hex('dhSecret'), dhSecret!, 'dhSecret is the third rng draw');
    const decoded = decodeDeviceKeyPair(o.hex('deviceKeys'));
    t.bytes(d.hex('deviceId'), decoded.deviceId, 'deviceKeys decodes to deviceId');
    t.bytes(d.hex('dhSecret'), decoded.dhSecret, 'deviceKeys decodes to dhSecret');
  },
};
