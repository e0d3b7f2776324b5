/**
 * Web Push subscriptions.
 *
 *   GET    /v1/push/vapid          -> { publicKey }   the relay's VAPID public key (public)
 *   PUT    /v1/push/subscription   { endpoint, keys: { p256dh, auth } } -> 204   (device)
 *   DELETE /v1/push/subscription   -> 204                                         (device)
 *
 * The body is the browser's PushSubscription.toJSON() (other fields, e.g. expirationTime, are
 * ignored). One subscription per device; a new one replaces it and resets its coalescing window.
 * The schema checks the shape (400 invalid_request); push/subscription.ts checks the endpoint
 * and keys (400 invalid_subscription).
 */
import { sql } from 'drizzle-orm';
import { Hono } from 'hono';
import * as v from 'valibot';
import { deviceAuth, lockActiveDevice, type RelayEnv, requireDevice } from '../middleware/auth.ts';
import { checkSubscription, MAX_ENDPOINT_CHARS } from '../push/subscription.ts';
import type { RelayServices } from '../services.ts';
import { valid } from '../validate.ts';

const Subscription = v.object({
  endpoint: v.pipe(v.string(), v.maxLength(MAX_ENDPOINT_CHARS)),
  // 65 bytes are 87 characters of base64url, 16 are 22: 200 bounds the work, the exact check follows.
  keys: v.object({ p256dh: v.pipe(v.string(), v.maxLength(200)), auth: v.pipe(v.string(), v.maxLength(200)) }),
});

export function pushRoutes(s: RelayServices) {
  return new Hono<RelayEnv>()
    .get('/push/vapid', (c) => c.json({ publicKey: s.vapid.publicKey }))
    .put('/push/subscription', requireDevice(s), valid('json', Subscription), async (c) => {
      const sub = checkSubscription(c.req.valid('json'), s.config.pushAllowInsecureEndpoints);
      const me = deviceAuth(c);
      await s.db.transaction(async (tx) => {
        // A removal racing this request would otherwise leave the endpoint stored for a device
        // that no longer exists.
        await lockActiveDevice(tx, me.device);
        await tx.execute(sql`
          INSERT INTO push_subscriptions (device, endpoint, p256dh, auth, created_at)
          VALUES (${me.device}, ${sub.endpoint}, ${sub.p256dh}, ${sub.auth}, ${s.now()}::bigint)
          ON CONFLICT (device) DO UPDATE SET endpoint = EXCLUDED.endpoint, p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth,
            last_push_at = NULL, created_at = EXCLUDED.created_at`);
      });
      return c.body(null, 204);
    })
    .delete('/push/subscription', requireDevice(s), async (c) => {
      await s.db.execute(sql`DELETE FROM push_subscriptions WHERE device = ${deviceAuth(c).device}`);
      return c.body(null, 204);
    });
}
