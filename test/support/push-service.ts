// A push-service double on loopback, as strict as a real one about what the relay sends:
// it verifies the VAPID JWT (RFC 8292: ES256 by the key in `k`, aud = our origin, exp in the
// future and at most 24 h away, a `sub`) and, like real services, that `k` is the
// applicationServerKey the subscription was made with; requires TTL (RFC 8030 §5.2), accepts
// only the four Urgency values (§5.3) and bodies up to 4096 bytes (§7.2); and decrypts the
// aes128gcm body (RFC 8188 + RFC 8291) with Node's own crypto using the subscription's private
// key. Each accepted push is recorded with its decrypted payload; a subscription can be told to
// answer 404/410 (gone) or anything else.
import { createECDH, createDecipheriv, createPublicKey, hkdfSync, randomBytes, verify } from 'node:crypto';
import { createServer, type Server } from 'node:http';

export interface Received {
  readonly id: string;
  readonly payload: string;
  readonly ttl: number;
  readonly urgency: string | undefined;
}

interface Sub {
  readonly ecdh: ReturnType<typeof createECDH>;
  readonly auth: Buffer;
  /** The VAPID public key (base64url) pushes must be signed with, when the subscriber named one. */
  readonly applicationServerKey: string | undefined;
  status: number;
}

const URGENCIES = new Set(['very-low', 'low', 'normal', 'high']);
/** RFC 8030 §7.2: a push service must accept at least 4096 bytes; real ones accept no more. */
const MAX_BODY = 4096;

const b64u = (b: Buffer) => b.toString('base64url');

export class PushServiceDouble {
  readonly received: Received[] = [];
  readonly rejected: string[] = [];
  private readonly subs = new Map<string, Sub>();
  private server!: Server;
  origin = '';

  static async start(): Promise<PushServiceDouble> {
    const d = new PushServiceDouble();
    d.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const r = d.handle(req.url ?? '', req.method ?? '', req.headers as Record<string, string | undefined>, Buffer.concat(chunks));
        res.writeHead(r.status).end(r.body ?? '');
      });
    });
    await new Promise<void>((r) => d.server.listen(0, '127.0.0.1', r));
    d.origin = `http://127.0.0.1:${(d.server.address() as { port: number }).port}`;
    return d;
  }

  /**
   * A browser-like subscription pointing here (PushSubscription.toJSON() shape): a fresh P-256
   * key pair and auth secret. With `applicationServerKey` (as pushManager.subscribe gets it),
   * pushes signed by any other VAPID key are refused with 403.
   */
  newSubscription(o: { applicationServerKey?: string } = {}): { endpoint: string; keys: { p256dh: string; auth: string } } {
    const id = randomBytes(12).toString('hex');
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const auth = randomBytes(16);
    this.subs.set(id, { ecdh, auth, applicationServerKey: o.applicationServerKey, status: 201 });
    return { endpoint: `${this.origin}/push/${id}`, keys: { p256dh: b64u(ecdh.getPublicKey()), auth: b64u(auth) } };
  }

  /** From now on, pushes to this subscription get `status` (410 Gone, 404, 500...). */
  setStatus(endpoint: string, status: number): void {
    this.subs.get(endpoint.split('/').pop()!)!.status = status;
  }

  forEndpoint(endpoint: string): Received[] {
    const id = endpoint.split('/').pop()!;
    return this.received.filter((r) => r.id === id);
  }

  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }

  private handle(url: string, method: string, h: Record<string, string | undefined>, body: Buffer): { status: number; body?: string } {
    const id = /^\/push\/([0-9a-f]+)$/.exec(url)?.[1];
    const sub = id ? this.subs.get(id) : undefined;
    if (method !== 'POST' || !sub || !id) return { status: 404 };
    const reject = (why: string, status = 400) => (this.rejected.push(why), { status, body: why });
    let vapid: { key: string } | string;
    try {
      vapid = this.checkVapid(h.authorization);
    } catch {
      vapid = 'JWT does not decode';
    }
    if (typeof vapid === 'string') return reject(vapid, 401);
    if (sub.applicationServerKey !== undefined && vapid.key !== sub.applicationServerKey) return reject('k is not the subscription\'s applicationServerKey', 403);
    const ttl = Number(h.ttl);
    if (h.ttl === undefined || !/^\d+$/.test(h.ttl) || !Number.isSafeInteger(ttl)) return reject('TTL header required');
    if (h.urgency !== undefined && !URGENCIES.has(h.urgency)) return reject('Urgency must be very-low, low, normal or high');
    if (h['content-encoding'] !== 'aes128gcm') return reject('content-encoding must be aes128gcm');
    if (body.length > MAX_BODY) return reject(`body over ${MAX_BODY} bytes`, 413);
    if (sub.status !== 201) return { status: sub.status };
    let payload: string;
    try {
      payload = decrypt(sub, body).toString('utf8');
    } catch (e) {
      return reject(`payload does not decrypt: ${(e as Error).message}`);
    }
    this.received.push({ id, payload, ttl, urgency: h.urgency });
    return { status: 201 };
  }

  /** The verified VAPID key (base64url), or why the Authorization header is unacceptable. */
  private checkVapid(header: string | undefined): { key: string } | string {
    const m = header && /^vapid t=([\w-]+\.[\w-]+\.[\w-]+),\s*k=([\w-]+)$/.exec(header);
    if (!m) return 'Authorization must be "vapid t=<jwt>, k=<key>"';
    const [head, claims, sig] = m[1]!.split('.') as [string, string, string];
    const key = Buffer.from(m[2]!, 'base64url');
    if (key.length !== 65 || key[0] !== 4) return 'k must be an uncompressed P-256 key';
    const jwk = { kty: 'EC', crv: 'P-256', x: b64u(key.subarray(1, 33)), y: b64u(key.subarray(33)) };
    let ok = false;
    try {
      ok = verify('sha256', Buffer.from(`${head}.${claims}`), { key: createPublicKey({ key: jwk, format: 'jwk' }), dsaEncoding: 'ieee-p1363' }, Buffer.from(sig, 'base64url'));
    } catch {}
    if (!ok) return 'JWT signature does not verify with k';
    const hd = JSON.parse(Buffer.from(head, 'base64url').toString());
    const c = JSON.parse(Buffer.from(claims, 'base64url').toString());
    const now = Math.floor(Date.now() / 1000);
    if (hd.alg !== 'ES256') return 'JWT alg must be ES256';
    if (c.aud !== this.origin) return `JWT aud ${c.aud} is not ${this.origin}`;
    if (!(c.exp > now) || c.exp > now + 24 * 3600) return 'JWT exp must be in the future and within 24 h';
    if (typeof c.sub !== 'string' || !/^(mailto:|https:)/.test(c.sub)) return 'JWT sub must be a mailto: or https: URI';
    return { key: m[2]! };
  }
}

/** RFC 8291 key derivation + RFC 8188 aes128gcm (a single record, as Web Push payloads are). */
function decrypt(sub: Sub, body: Buffer): Buffer {
  const salt = body.subarray(0, 16);
  const rs = body.readUInt32BE(16);
  const idlen = body[20]!;
  const asPublic = body.subarray(21, 21 + idlen);
  const record = body.subarray(21 + idlen);
  if (idlen !== 65 || record.length > rs) throw new Error('bad header');
  const uaPublic = sub.ecdh.getPublicKey();
  const shared = sub.ecdh.computeSecret(asPublic);
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), uaPublic, asPublic]);
  const ikm = Buffer.from(hkdfSync('sha256', shared, sub.auth, keyInfo, 32));
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));
  const d = createDecipheriv('aes-128-gcm', cek, nonce);
  d.setAuthTag(record.subarray(record.length - 16));
  const padded = Buffer.concat([d.update(record.subarray(0, record.length - 16)), d.final()]);
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  if (padded[end] !== 2) throw new Error('last record must end with the 0x02 delimiter');
  return padded.subarray(0, end);
}
