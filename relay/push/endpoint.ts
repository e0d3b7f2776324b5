/**
 * Where the relay may send a push. A push endpoint comes from a client, and the relay POSTs to it:
 * without limits a client could aim the relay at services only the relay can reach (a database,
 * a cloud metadata service, an admin port on localhost). Push services are public HTTPS servers on
 * port 443, so an endpoint must be `https:` on the default port with a host that is not a
 * loopback, private, link-local or otherwise reserved address — checked when the subscription is
 * stored (an address literal, `localhost`) and again on every send, on the addresses the name
 * resolves to then (a name that resolves to a private address, or starts to: DNS rebinding).
 *
 * An operator running a push service on the same machine or network (the tests' double) allows
 * that with PETREL_PUSH_ALLOW_HTTP=1 (config.pushAllowInsecureEndpoints): then `http:`, any port
 * and any address are accepted.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';

/** Special-purpose address blocks (IANA registries) that no public push service uses. */
const RESERVED = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local (cloud metadata services live here)
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  RESERVED.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['64:ff9b::', 96], // NAT64: an IPv4 address inside, which may be private
  ['64:ff9b:1::', 48], // local-use NAT64
  ['100::', 64], // discard
  ['2001::', 23], // protocol assignments (Teredo, ...)
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4: an IPv4 address inside
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const) {
  RESERVED.addSubnet(net, bits, 'ipv6');
}

/** True for an address a public push service could have. */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return !RESERVED.check(address, 'ipv4');
  if (family === 6) {
    // An IPv4-mapped address (::ffff:a.b.c.d or its hex form) is that IPv4 address.
    const mapped = /^::ffff:(?:0:)?(.+)$/i.exec(address)?.[1];
    if (mapped !== undefined) return isIP(mapped) === 4 ? isPublicAddress(mapped) : isPublicAddress(hexMappedToV4(mapped));
    return !RESERVED.check(address, 'ipv6');
  }
  return false;
}

function hexMappedToV4(tail: string): string {
  const m = /^([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(tail);
  if (!m) return '';
  const hi = parseInt(m[1]!, 16);
  const lo = parseInt(m[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/**
 * Why an endpoint URL may not be used (undefined: it may), from the URL alone: scheme, port,
 * credentials and an address-literal or `localhost` host.
 */
export function endpointProblem(url: URL, allowLocal: boolean): string | undefined {
  if (url.username || url.password) return 'endpoint must not carry credentials';
  if (allowLocal) return url.protocol === 'https:' || url.protocol === 'http:' ? undefined : 'endpoint must be https';
  if (url.protocol !== 'https:') return 'endpoint must be https';
  if (url.port !== '') return 'endpoint must use the default https port';
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return 'endpoint must be a public push service';
  if (isIP(host) && !isPublicAddress(host)) return 'endpoint must be a public push service';
  return undefined;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for http(s).request that resolves as usual and fails unless every address is public:
 * the check happens on the addresses the connection will use, so a name cannot pass a check and
 * then resolve elsewhere.
 */
export function publicLookup(hostname: string, options: { all?: boolean; family?: number | string }, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true } as { all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    const bad = addresses.find((a) => !isPublicAddress(a.address));
    if (bad || addresses.length === 0) {
      const e = Object.assign(new Error(`push endpoint ${hostname} resolves to a non-public address`), { code: 'EPUSHADDRESS' });
      return callback(e, []);
    }
    if (options.all) return callback(null, addresses);
    callback(null, addresses[0]!.address, addresses[0]!.family);
  });
}
