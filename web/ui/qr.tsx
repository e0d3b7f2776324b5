/** A QR code as an <img> with a data: URL (allowed by the CSP's img-src), never as markup. */
import qrcode from 'qrcode-generator';

export function Qr({ text, label }: { text: string; label: string }) {
  const qr = qrcode(0, 'M');
  qr.addData(text);
  qr.make();
  // 4 px per module, and the 4-module quiet zone scanners need around the code.
  return <img class="qr" src={qr.createDataURL(4, 16)} alt={label} width={qr.getModuleCount() * 4 + 32} />;
}
