import { createRequire } from 'node:module';

/**
 * node:http, loaded with require. On Node.js 22 and later an ES import of it evaluates every export
 * of its namespace, WebSocket's among them, and that loads Node's bundled undici: 2.3 MB more V8 heap
 * for the life of the process, which the daemon never uses. Its types come from `import type`.
 */
export const http: typeof import('node:http') = createRequire(import.meta.url)('node:http');
