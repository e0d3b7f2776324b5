/**
 * The relay as a Hono app: createApp(services) is what tests call (app.request, no port);
 * server.ts is the only place that binds one. Routes are grouped as sub-apps under /v1.
 * Every error leaves as JSON { error, message } with its status (errors.ts); no stack
 * traces, and malformed input is always a 4xx.
 *
 * With `webRoot` (server.ts passes web/dist when it exists) the app also serves the built PWA
 * from that directory, same origin as the API, under a strict Content-Security-Policy (no
 * inline script, no eval, no third-party origins) that every response carries.
 */
import { upgradeWebSocket } from '@hono/node-server';
import { serveStatic } from '@hono/node-server/serve-static';
import { sql } from 'drizzle-orm';
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { secureHeaders } from 'hono/secure-headers';
import type { RawData, WebSocket } from 'ws';
import { ApiError } from './errors.ts';
import { errorFields } from './log.ts';
import { scrapeAllowed } from './metrics.ts';
import type { RelayEnv } from './middleware/auth.ts';
import { accountRoutes } from './routes/accounts.ts';
import { attachmentRoutes } from './routes/attachments.ts';
import { deviceRoutes } from './routes/devices.ts';
import { keyRoutes } from './routes/keys.ts';
import { messageRoutes } from './routes/messages.ts';
import { pushRoutes } from './routes/push.ts';
import { DeviceSocket } from './routes/ws.ts';
import type { RelayServices } from './services.ts';
import { limitBody } from './validate.ts';

/** A text frame's string (`ws` hands text frames over as bytes: one Buffer, or fragments). */
const textOf = (data: RawData) =>
  (Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)).toString('utf8');

export interface AppOptions {
  /** A directory of static files (the built PWA) served for GET/HEAD outside /v1. */
  readonly webRoot?: string;
}

/** The PWA's policy: own origin only, no inline script or style, no plugins, no framing. */
export const CONTENT_SECURITY_POLICY = {
  defaultSrc: ["'self'"],
  // libsodium and OPAQUE are WebAssembly: compiling it needs 'wasm-unsafe-eval' (not 'unsafe-eval').
  scriptSrc: ["'self'", "'wasm-unsafe-eval'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", 'data:', 'blob:'],
  connectSrc: ["'self'"],
  workerSrc: ["'self'"],
  manifestSrc: ["'self'"],
  objectSrc: ["'none'"],
  baseUri: ["'none'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
};

export function createApp(s: RelayServices, opts: AppOptions = {}) {
  const app = new Hono<RelayEnv>();
  const { config } = s;

  app.use(
    secureHeaders({
      contentSecurityPolicy: CONTENT_SECURITY_POLICY,
      crossOriginResourcePolicy: 'same-origin',
      crossOriginOpenerPolicy: 'same-origin',
      referrerPolicy: 'no-referrer',
      xFrameOptions: 'DENY', // as the CSP's frame-ancestors 'none', for browsers that only know this one
    }),
  );
  app.use('/v1/*', async (c, next) => {
    c.header('Cache-Control', 'no-store');
    await next();
  });
  // Body limits: large only where large bodies belong.
  const small = limitBody(config.maxBodyBytes);
  const messages = limitBody(config.maxMessageBodyBytes);
  const keys = limitBody(config.maxPrekeyBodyBytes);
  app.use('/v1/*', (c, next) => {
    const p = c.req.path;
    if (p === '/v1/messages') return messages(c, next);
    if (p === '/v1/keys') return keys(c, next);
    if (/^\/v1\/attachments\/[^/]+\/chunks\//.test(p)) return next(); // the route sets its own (chunk-sized) limit
    return small(c, next);
  });

  // Metrics by route pattern (bounded label values), measured around everything below. The
  // debug access log uses the pattern too: paths hold usernames and attachment ids (capabilities).
  app.use('*', async (c, next) => {
    const started = performance.now();
    await next();
    if (c.req.path === '/metrics') return;
    const route = c.req.path.startsWith('/v1/') ? c.req.routePath : c.req.path === '/healthz' ? '/healthz' : 'static';
    const seconds = (performance.now() - started) / 1000;
    // node-server hands an upgraded request to `ws` and answers Hono with a placeholder 200: the
    // client got 101 Switching Protocols, so that is what is counted.
    const upgraded = c.res.status === 200 && c.req.header('upgrade')?.toLowerCase() === 'websocket';
    s.metrics.httpRequests.inc({ route, method: c.req.method, status: upgraded ? '101' : String(c.res.status) });
    s.metrics.httpDuration.observe(seconds, { route });
    s.log('debug', 'request', { method: c.req.method, route, status: c.res.status, ms: Math.round(seconds * 1000) });
  });

  // Healthy means able to serve: the database answers (within 2 s). A load balancer then takes a
  // process whose database is unreachable out of rotation instead of sending it requests that fail.
  app.get('/healthz', async (c) => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('database check timed out')), 2000)));
    try {
      await Promise.race([s.db.execute(sql`SELECT 1`), late]);
      return c.json({ status: 'ok' });
    } catch (e) {
      s.log('warn', 'health check failed', errorFields(e));
      return c.json({ status: 'unavailable', error: 'database_unavailable', message: 'the database does not answer' }, 503);
    } finally {
      clearTimeout(timer);
    }
  });
  app.get('/metrics', (c) => {
    if (!scrapeAllowed(c.req.header('authorization'), config.metricsToken)) {
      throw new ApiError(401, 'unauthorized', 'metrics need the operator token');
    }
    return c.body(s.metrics.render(), 200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
  });

  app.get(
    '/v1/ws',
    upgradeWebSocket(() => {
      let socket: DeviceSocket | undefined;
      return {
        onOpen: (_e, ws) => {
          const live = (socket = new DeviceSocket(s, ws));
          // Frames are read from the `ws` socket itself rather than through onMessage, which copies
          // each one's bytes and wraps the text in a DOM MessageEvent: garbage on the hot path that
          // nothing here reads. (onOpen runs in the tick the socket opened: no frame came before.)
          (ws.raw as unknown as WebSocket).on('message', (data, isBinary) => {
            // A throw here would be an uncaught exception in the process: it ends this socket only.
            try {
              live.onMessage(isBinary ? undefined : textOf(data));
            } catch (e) {
              live.crashed(e);
            }
          });
        },
        onClose: () => socket?.onClose(),
      };
    }),
    () => {
      throw new ApiError(426, 'invalid_request', 'this endpoint speaks WebSocket only');
    },
  );

  app.route('/v1', accountRoutes(s));
  app.route('/v1', deviceRoutes(s));
  app.route('/v1', keyRoutes(s));
  app.route('/v1', messageRoutes(s));
  app.route('/v1', attachmentRoutes(s));
  app.route('/v1', pushRoutes(s));

  if (opts.webRoot) {
    const files = serveStatic({ root: opts.webRoot });
    app.use('*', (c, next) => (c.req.path.startsWith('/v1/') ? next() : files(c, next)));
  }

  app.notFound((c) => c.json({ error: 'not_found', message: 'no such endpoint' }, 404));
  app.onError((err, c) => {
    // A body refused for its size is left unread, so the connection cannot carry another request:
    // say so, rather than keep-alive and then drop it under the next one.
    if ((err instanceof ApiError || err instanceof HTTPException) && err.status === 413) c.header('connection', 'close');
    // A 401 says which scheme would do (RFC 9110 §11.6.1): a bearer token.
    if ((err instanceof ApiError || err instanceof HTTPException) && err.status === 401) c.header('www-authenticate', 'Bearer realm="petrel"');
    if (err instanceof ApiError) return c.json(err.body(), err.status);
    if (err instanceof HTTPException && err.status < 500) {
      const code = err.status === 400 ? 'invalid_json' : err.status === 413 ? 'payload_too_large' : 'invalid_request';
      return c.json({ error: code, message: err.status === 400 ? 'request body is not valid JSON' : err.message }, err.status);
    }
    // The route pattern, not the path: a path can hold an attachment id, which is a download capability.
    s.log('error', 'unhandled error', { method: c.req.method, route: c.req.routePath, ...errorFields(err) });
    return c.json({ error: 'internal', message: 'internal error' }, 500);
  });
  return app;
}

export type RelayApp = ReturnType<typeof createApp>;
