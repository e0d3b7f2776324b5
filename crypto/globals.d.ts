// The few web-platform globals crypto/ uses, declared here because crypto/ compiles with
// neither the DOM lib nor node types. All exist in browsers, workers and Node >= 19.
// Only crypto/tsconfig.json includes this file; other folders get them from their libs.
declare var crypto: { getRandomValues<T extends Uint8Array>(array: T): T };
declare class TextEncoder {
  encode(input?: string): Uint8Array<ArrayBuffer>;
}
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean; ignoreBOM?: boolean });
  decode(input?: Uint8Array): string;
}
