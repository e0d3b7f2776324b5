/**
 * The one `Range` form a download needs to resume or seek: a single byte range (RFC 9110 §14.1.2),
 * `bytes=first-last`, `bytes=first-` or `bytes=-suffixLength`. Anything else — several ranges,
 * other units, garbage — is ignored and the whole blob is sent, which RFC 9110 §14.2 allows.
 */
export type RangeRequest = { readonly first: number; readonly last: number } | 'whole' | 'unsatisfiable';

const SINGLE = /^bytes=(\d{0,15})-(\d{0,15})$/;

export function parseRange(header: string | undefined, size: number): RangeRequest {
  const m = header ? SINGLE.exec(header.trim()) : null;
  if (!m || (m[1] === '' && m[2] === '')) return 'whole';
  if (m[1] === '') {
    // A suffix: the last n bytes (all of them if n exceeds the size).
    const n = Number(m[2]);
    return n === 0 ? 'unsatisfiable' : { first: Math.max(0, size - n), last: size - 1 };
  }
  const first = Number(m[1]);
  if (m[2] !== '' && Number(m[2]) < first) return 'whole'; // last before first: invalid, so ignored (§14.1.2)
  if (first >= size) return 'unsatisfiable';
  return { first, last: m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1) };
}
