// Timers exist in every runtime the engine runs in (page, worker, Node); declared here because
// web/core compiles without the DOM lib and without node types. Only web/core/tsconfig.json
// includes this file; other folders get these from their libs.
declare function setTimeout(handler: () => void, ms?: number): unknown;
declare function clearTimeout(handle: unknown): void;
