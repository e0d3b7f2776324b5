// Writes the PWA's PNG icons (a petrel-blue disc with a white wing) with nothing but zlib, so
// the repository holds no opaque binaries it cannot regenerate: `tsx scripts/make-icons.ts`.
import { writeFileSync } from 'node:fs';
import { deflateSync, crc32 } from 'node:zlib';

function png(size: number, maskable: boolean): Buffer {
  const rows: Buffer[] = [];
  const c = size / 2;
  for (let y = 0; y < size; y++) {
    const row = Buffer.alloc(1 + size * 4);
    for (let x = 0; x < size; x++) {
      const dx = (x - c) / c;
      const dy = (y - c) / c;
      const inDisc = maskable || dx * dx + dy * dy <= 0.94;
      // A simple wing: two arcs forming a gull-wing shape in the middle.
      const wx = Math.abs(dx);
      const wingY = 0.18 * Math.sin(Math.PI * Math.min(wx / 0.62, 1)) - 0.05;
      const inWing = wx < 0.62 && dy > -wingY - 0.09 && dy < -wingY + 0.03;
      const [r, g, b, a] = !inDisc ? [0, 0, 0, 0] : inWing ? [255, 255, 255, 255] : [15, 76, 92, 255];
      row.set([r, g, b, a], 1 + x * 4);
    }
    rows.push(row);
  }
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr.set([8, 6, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.concat(rows))), chunk('IEND', Buffer.alloc(0))]);
}

const dir = new URL('../web/public/icons/', import.meta.url);
writeFileSync(new URL('icon-192.png', dir), png(192, false));
writeFileSync(new URL('icon-512.png', dir), png(512, false));
writeFileSync(new URL('maskable-512.png', dir), png(512, true));
console.log('icons written to web/public/icons');
