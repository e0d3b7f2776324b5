/**
 * Unpadded base64url, as the relay speaks it: libsodium's codec (crypto/sodium.ts), which is
 * strict — anything that is not canonical unpadded base64url throws (CryptoError 'malformed').
 * Like all of crypto/, usable once its ready() ran, as Engine.open does first. (A codec of our
 * own here cost the app's bundle 270 bytes gzip for what libsodium already ships; it decoded
 * about twice as fast, so hot paths decode a value once: inbox.ts.)
 */
export { fromBase64url as fromB64, toBase64url as toB64 } from '../../crypto/index.ts';
