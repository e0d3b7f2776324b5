/** A QR code as an <img> with a data: URL (allowed by the CSP's img-src), never as markup. */
import { qrDataUrl, qrEncode } from './qr-encode.ts';

export function Qr({ text, label }: { text: string; label: string }) {
  const modules = qrEncode(text);
  // Shown at 4 px per module, with the 4-module quiet zone scanners need around the code.
  return <img class="qr" src={qrDataUrl(modules, 4)} alt={label} width={modules.length * 4 + 32} />;
}
