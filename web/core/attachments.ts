/**
 * Attachments: encrypted on the device with crypto/'s secretstream (a fresh key per file), the
 * ciphertext uploaded to the relay in chunks, and the pointer (key, hash, size) sent inside the
 * end-to-end message. The relay stores bytes it cannot read; a recipient downloads by the
 * unguessable id and checks the hash before showing anything.
 */
import { decodeAttachmentPointer, decryptAttachment, encodeAttachmentPointer, encryptAttachment } from '../../crypto/index.ts';
import { toB64 } from './b64.ts';
import type { Ctx } from './context.ts';
import type { AttachmentInfo } from './protocol/content.ts';

export type Progress = (done: number, total: number) => void;

export async function uploadAttachment(ctx: Ctx, file: { name: string; mime: string; bytes: Uint8Array }, onProgress?: Progress): Promise<AttachmentInfo> {
  const { ciphertext, pointer } = encryptAttachment(file.bytes, ctx.rng);
  const { id, chunkSize } = await ctx.api.createAttachment(ciphertext.length);
  let idx = 0;
  for (let off = 0; off < ciphertext.length || idx === 0; off += chunkSize, idx++) {
    await ctx.api.putChunk(id, idx, ciphertext.subarray(off, Math.min(ciphertext.length, off + chunkSize)));
    onProgress?.(Math.min(ciphertext.length, off + chunkSize), ciphertext.length);
  }
  await ctx.api.completeAttachment(id);
  return { id, pointer: toB64(encodeAttachmentPointer(pointer)), name: file.name.slice(0, 255), mime: file.mime.slice(0, 127) || 'application/octet-stream', size: file.bytes.length };
}

export async function downloadAttachment(ctx: Ctx, id: string, pointer: Uint8Array): Promise<Uint8Array> {
  const ciphertext = await ctx.api.downloadAttachment(id);
  return decryptAttachment(ciphertext, decodeAttachmentPointer(pointer));
}
