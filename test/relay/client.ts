// A small test client of the relay built from crypto/'s public API: real account keys, signed
// device lists, signed prekeys, real sessions and fan-out. It talks HTTP through a Fetch
// (app.request or a real port), so the same code drives route tests and server tests.
import * as opaque from '@serenity-kit/opaque';
import {
  type AccountKeyPair,
  activeDevices,
  decodeBundle,
  decodeDeviceList,
  type DeviceKeyPair,
  type DeviceList,
  type DeviceSessions,
  EMPTY_DEVICE_SESSIONS,
  fanoutDecrypt,
  fanoutEncrypt,
  generateAccountKey,
  generateDevice,
  generatePrekey,
  encodePrekey,
  newDeviceList,
  PrekeyKind,
  type PrekeySecret,
  publicPart,
  ready,
  signDeviceList,
  startSession,
  systemRng,
  toHex,
  withDeviceAdded,
  withDeviceRemoved,
} from '../../crypto/index.ts';
import type { Fetch } from './harness.ts';

export const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');
export const unb64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64url'));
const STRETCH = 'memory-constrained' as const;

export interface Reply {
  status: number;
  body: any;
}

export async function call(fetch: Fetch, method: string, path: string, o: { body?: unknown; token?: string; raw?: string } = {}): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  let body: string | undefined;
  if (o.raw !== undefined) body = o.raw;
  else if (o.body !== undefined) body = JSON.stringify(o.body);
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed };
}

export async function register(fetch: Fetch, username: string, password: string): Promise<Reply & { exportKey?: string }> {
  await opaque.ready;
  const { clientRegistrationState, registrationRequest } = opaque.client.startRegistration({ password });
  const start = await call(fetch, 'POST', '/v1/accounts/register/start', { body: { username, registrationRequest } });
  if (start.status !== 200) return start;
  const { registrationRecord, exportKey } = opaque.client.finishRegistration({
    clientRegistrationState,
    registrationResponse: start.body.registrationResponse,
    password,
    keyStretching: STRETCH,
  });
  const finish = await call(fetch, 'POST', '/v1/accounts/register/finish', { body: { username, registrationRecord } });
  return { ...finish, exportKey };
}

/** OPAQUE login; `undefined` body.sessionToken when the client itself detects a wrong password. */
export async function login(fetch: Fetch, username: string, password: string): Promise<Reply & { exportKey?: string }> {
  await opaque.ready;
  const { clientLoginState, startLoginRequest } = opaque.client.startLogin({ password });
  const start = await call(fetch, 'POST', '/v1/accounts/login/start', { body: { username, startLoginRequest } });
  if (start.status !== 200) return start;
  const fin = opaque.client.finishLogin({ clientLoginState, loginResponse: start.body.loginResponse, password, keyStretching: STRETCH });
  if (!fin) return { status: 0, body: { error: 'client_rejected' } };
  const finish = await call(fetch, 'POST', '/v1/accounts/login/finish', { body: { loginId: start.body.loginId, finishLoginRequest: fin.finishLoginRequest } });
  return { ...finish, exportKey: fin.exportKey };
}

export interface TestDevice {
  readonly user: TestUser;
  readonly keys: DeviceKeyPair;
  token: string;
  readonly prekeys: Map<string, PrekeySecret>;
  readonly sessions: Map<string, DeviceSessions>;
  nextPrekeyId: number;
}

export interface TestUser {
  readonly name: string;
  readonly password: string;
  readonly account: AccountKeyPair;
  session: string;
  list: DeviceList | undefined;
  readonly devices: TestDevice[];
}

export async function publishList(fetch: Fetch, user: TestUser, list: DeviceList, token = user.session): Promise<Reply> {
  const signed = signDeviceList(list, user.account);
  const r = await call(fetch, 'PUT', '/v1/account/devices', { token, body: { list: b64(signed.bytes) } });
  if (r.status === 200) user.list = list;
  return r;
}

export async function issueToken(fetch: Fetch, user: TestUser, device: DeviceKeyPair, token = user.session): Promise<Reply> {
  return call(fetch, 'POST', `/v1/account/devices/${b64(device.deviceId)}/token`, { token });
}

/** A registered user with `deviceCount` devices, each with a token and `oneTime` prekeys of each one-time kind. */
export async function createUser(fetch: Fetch, name: string, deviceCount = 1, oneTime = 5): Promise<TestUser> {
  await ready();
  const password = `pw-${name}`;
  const reg = await register(fetch, name, password);
  if (reg.status !== 201) throw new Error(`register ${name}: ${reg.status} ${JSON.stringify(reg.body)}`);
  const user: TestUser = { name, password, account: generateAccountKey(systemRng), session: reg.body.sessionToken, list: undefined, devices: [] };
  for (let i = 0; i < deviceCount; i++) await addDevice(fetch, user, oneTime);
  return user;
}

export async function addDevice(fetch: Fetch, user: TestUser, oneTime = 5): Promise<TestDevice> {
  const keys = generateDevice(systemRng);
  const now = Date.now();
  const list = user.list ? withDeviceAdded(user.list, keys, `device ${user.devices.length}`, now) : newDeviceList(user.name, user.account.publicKey, keys, 'first', now);
  const pub = await publishList(fetch, user, list);
  if (pub.status !== 200) throw new Error(`publish list: ${pub.status} ${JSON.stringify(pub.body)}`);
  const tok = await issueToken(fetch, user, keys);
  if (tok.status !== 200) throw new Error(`token: ${tok.status} ${JSON.stringify(tok.body)}`);
  const device: TestDevice = { user, keys, token: tok.body.token, prekeys: new Map(), sessions: new Map(), nextPrekeyId: 1 };
  user.devices.push(device);
  const up = await uploadPrekeys(fetch, device, oneTime, true);
  if (up.status !== 200) throw new Error(`prekeys: ${up.status} ${JSON.stringify(up.body)}`);
  return device;
}

export async function removeDevice(fetch: Fetch, user: TestUser, device: TestDevice): Promise<Reply> {
  const r = await publishList(fetch, user, withDeviceRemoved(user.list!, device.keys.deviceId, Date.now()));
  if (r.status === 200) user.devices.splice(user.devices.indexOf(device), 1);
  return r;
}

export async function uploadPrekeys(fetch: Fetch, d: TestDevice, oneTime: number, withSigned = false): Promise<Reply> {
  const out: Uint8Array[] = [];
  const make = (kind: PrekeyKind) => {
    const p = generatePrekey(d.keys, kind, d.nextPrekeyId++, systemRng);
    d.prekeys.set(`${kind}/${p.secret.id}`, p.secret);
    out.push(encodePrekey(p.public));
  };
  if (withSigned) {
    make(PrekeyKind.signed);
    make(PrekeyKind.pqLastResort);
  }
  for (let i = 0; i < oneTime; i++) {
    make(PrekeyKind.oneTime);
    make(PrekeyKind.pqOneTime);
  }
  return call(fetch, 'PUT', '/v1/keys', { token: d.token, body: { prekeys: out.map(b64) } });
}

export async function fetchList(fetch: Fetch, username: string): Promise<DeviceList> {
  const r = await call(fetch, 'GET', `/v1/users/${username}/devices`);
  if (r.status !== 200) throw new Error(`device list ${username}: ${r.status}`);
  return decodeDeviceList(unb64(r.body.list));
}

const addr = (user: string, deviceId: Uint8Array) => `${user}/${toHex(deviceId)}`;

/**
 * Sends `plaintext` from `from` to every active device of `to` and to the sender's own other
 * devices, starting sessions from fetched bundles where needed. Returns the relay's reply.
 */
export async function send(fetch: Fetch, from: TestDevice, to: string[], plaintext: Uint8Array, clientMessageId: string): Promise<Reply> {
  const targets: { user: string; device: DeviceKeyPair | ReturnType<typeof publicPart> }[] = [];
  for (const user of new Set([...to, from.user.name])) {
    const list = await fetchList(fetch, user);
    const need = activeDevices(list).filter((d) => !(user === from.user.name && toHex(d.deviceId) === toHex(from.keys.deviceId)));
    const missing = need.filter((d) => !from.sessions.has(addr(user, d.deviceId)));
    if (missing.length) {
      const r = await call(fetch, 'GET', `/v1/users/${user}/bundles?devices=${missing.map((d) => b64(d.deviceId)).join(',')}`, { token: from.token });
      if (r.status !== 200) throw new Error(`bundles: ${r.status} ${JSON.stringify(r.body)}`);
      for (const { deviceId, bundle } of r.body.bundles as { deviceId: string; bundle: string }[]) {
        const d = missing.find((m) => b64(m.deviceId) === deviceId)!;
        from.sessions.set(addr(user, d.deviceId), startSession(EMPTY_DEVICE_SESSIONS, from.keys, publicPart(d), decodeBundle(unb64(bundle)), systemRng));
      }
    }
    for (const d of need) targets.push({ user, device: publicPart(d) });
  }
  const out = fanoutEncrypt(
    plaintext,
    targets.map((t) => ({ address: t, record: from.sessions.get(addr(t.user, t.device.deviceId))! })),
    systemRng,
  );
  for (const m of out.messages) from.sessions.set(addr(m.address.user, m.address.device.deviceId), m.record);
  return call(fetch, 'POST', '/v1/messages', {
    token: from.token,
    body: {
      clientMessageId,
      to,
      payload: b64(out.payload),
      envelopes: out.messages.map((m) => ({ user: m.address.user, device: b64(m.address.device.deviceId), body: b64(m.message) })),
    },
  });
}

export interface WireEnvelope {
  seq: number;
  messageId: number;
  sender: { user: string; device: string };
  timestamp: number;
  envelope: string;
  payload: string;
}

/** Decrypts one received envelope on `d` (looking the sender's keys up in its signed device list). */
export async function open(fetch: Fetch, d: TestDevice, e: WireEnvelope): Promise<string> {
  const list = await fetchList(fetch, e.sender.user);
  const sender = list.devices.find((x) => b64(x.deviceId) === e.sender.device)!;
  const key = addr(e.sender.user, sender.deviceId);
  const r = fanoutDecrypt(
    d.sessions.get(key) ?? EMPTY_DEVICE_SESSIONS,
    unb64(e.envelope),
    unb64(e.payload),
    d.keys,
    publicPart(sender),
    (kind, id) => d.prekeys.get(`${kind}/${id}`),
    systemRng,
  );
  d.sessions.set(key, r.record);
  return new TextDecoder().decode(r.plaintext);
}
