/**
 * Accounts: username + password through OPAQUE (@serenity-kit/opaque). The relay stores the
 * registration record only; it never sees the password or anything that allows an offline
 * guess without its database and its OPAQUE server setup. The client derives an export key
 * that the relay never learns, and stores here an account-key backup encrypted under it.
 *
 *   POST /v1/accounts/register/start   { username, registrationRequest } -> { registrationResponse }
 *   POST /v1/accounts/register/finish  { username, registrationRecord }  -> 201 { username, sessionToken, expiresAt }
 *   POST /v1/accounts/login/start      { username, startLoginRequest }   -> { loginId, loginResponse }
 *   POST /v1/accounts/login/finish     { loginId, finishLoginRequest }   -> { username, sessionToken, expiresAt, backup|null }
 *   PUT  /v1/account/backup            { backup }                        -> 204        (account session or device)
 *   GET  /v1/account/backup                                              -> { backup } (account session or device)
 */
import { randomBytes } from 'node:crypto';
import * as opaque from '@serenity-kit/opaque';
import { eq } from 'drizzle-orm';
import { Hono } from 'hono';
import * as v from 'valibot';
import { accounts, accountSessions, opaqueLogins } from '../db/schema.ts';
import { b64Bytes, toB64 } from '../encoding.ts';
import { ApiError, notFound } from '../errors.ts';
import { type RelayEnv, requireAccount } from '../middleware/auth.ts';
import type { RelayServices } from '../services.ts';
import { newToken, randomId, SESSION_TOKEN_PREFIX } from '../tokens.ts';
import { requireUsername } from '../usernames.ts';
import { valid } from '../validate.ts';

const opaqueMessage = v.pipe(v.string(), v.minLength(1), v.maxLength(2048), v.regex(/^[A-Za-z0-9_-]+$/, 'not base64url'));
const username = v.pipe(v.string(), v.maxLength(128));

const RegisterStart = v.object({ username, registrationRequest: opaqueMessage });
const RegisterFinish = v.object({ username, registrationRecord: opaqueMessage });
const LoginStart = v.object({ username, startLoginRequest: opaqueMessage });
const LoginFinish = v.object({ loginId: v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{22}$/)), finishLoginRequest: opaqueMessage });

/** Runs an OPAQUE server step; a message that does not decode is the client's fault (400). */
function opaqueStep<T>(f: () => T): T {
  try {
    return f();
  } catch {
    throw new ApiError(400, 'invalid_opaque_message', 'OPAQUE message does not decode');
  }
}

/**
 * A login start of our own, made once: feeding a registration record to the server's login step
 * with it is how a record is checked before it is stored (it must deserialize, its client key be
 * a valid point). A record that does not would make the name taken by an account nobody can log
 * into, and answer its logins differently from an unknown user's.
 */
let probeLogin: string | undefined;
function checkRecord(s: RelayServices, name: string, record: string): void {
  probeLogin ??= opaque.client.startLogin({ password: randomBytes(16).toString('base64url') }).startLoginRequest;
  const login = probeLogin;
  opaqueStep(() => opaque.server.startLogin({ serverSetup: s.opaqueSetup, registrationRecord: record, startLoginRequest: login, userIdentifier: name }));
}

export function accountRoutes(s: RelayServices) {
  const { db } = s;
  const taken = () => new ApiError(409, 'username_taken', 'that username is taken');

  async function issueSession(accountId: number) {
    const { token, hash } = newToken(SESSION_TOKEN_PREFIX);
    const expiresAt = s.now() + s.config.sessionTtlMs;
    await db.insert(accountSessions).values({ tokenHash: hash, accountId, expiresAt });
    return { sessionToken: token, expiresAt };
  }

  return new Hono<RelayEnv>()
    .post('/accounts/register/start', valid('json', RegisterStart), async (c) => {
      s.limits.registerPerIp.check(s.clientIp(c), 'registration attempts');
      const body = c.req.valid('json');
      const name = requireUsername(body.username);
      s.limits.registerPerUser.check(name, 'registration attempts for this username');
      const [existing] = await db.select({ id: accounts.id }).from(accounts).where(eq(accounts.username, name));
      if (existing) throw taken();
      const { registrationResponse } = opaqueStep(() =>
        opaque.server.createRegistrationResponse({
          serverSetup: s.opaqueSetup,
          userIdentifier: name,
          registrationRequest: body.registrationRequest,
        }),
      );
      return c.json({ registrationResponse });
    })
    .post('/accounts/register/finish', valid('json', RegisterFinish), async (c) => {
      s.limits.registerPerIp.check(s.clientIp(c), 'registration attempts');
      const body = c.req.valid('json');
      const name = requireUsername(body.username);
      checkRecord(s, name, body.registrationRecord);
      const [row] = await db
        .insert(accounts)
        .values({ username: name, opaqueRecord: body.registrationRecord, createdAt: s.now() })
        .onConflictDoNothing()
        .returning({ id: accounts.id });
      if (!row) throw taken();
      s.log('info', 'account registered', { account: row.id });
      return c.json({ username: name, ...(await issueSession(row.id)) }, 201);
    })
    .post('/accounts/login/start', valid('json', LoginStart), async (c) => {
      const body = c.req.valid('json');
      const name = requireUsername(body.username);
      s.limits.loginPerIp.check(s.clientIp(c), 'login attempts');
      s.limits.loginPerUser.check(name, 'login attempts for this user');
      const [acct] = await db.select({ id: accounts.id, record: accounts.opaqueRecord }).from(accounts).where(eq(accounts.username, name));
      // An unknown user gets a well-formed fake response (OPAQUE's dummy record), so login
      // start does not tell who exists; finish then fails like a wrong password.
      const { serverLoginState, loginResponse } = opaqueStep(() =>
        opaque.server.startLogin({
          serverSetup: s.opaqueSetup,
          registrationRecord: acct?.record ?? null,
          startLoginRequest: body.startLoginRequest,
          userIdentifier: name,
        }),
      );
      const loginId = randomId();
      await db.insert(opaqueLogins).values({
        id: loginId,
        accountId: acct?.id ?? null,
        state: serverLoginState,
        expiresAt: s.now() + s.config.loginStateTtlMs,
      });
      return c.json({ loginId, loginResponse });
    })
    .post('/accounts/login/finish', valid('json', LoginFinish), async (c) => {
      s.limits.loginPerIp.check(s.clientIp(c), 'login attempts');
      const body = c.req.valid('json');
      const failed = () => new ApiError(401, 'login_failed', 'login failed');
      // One attempt per login state: it is deleted whatever the outcome.
      const [state] = await db.delete(opaqueLogins).where(eq(opaqueLogins.id, body.loginId)).returning();
      if (!state || state.expiresAt < s.now() || state.accountId === null) throw failed();
      // finishLogin throws when the client's MAC does not verify (wrong password, forged or
      // replayed message); a missing session key is treated the same way, defensively.
      let sessionKey: string | undefined;
      try {
        sessionKey = opaque.server.finishLogin({ serverLoginState: state.state, finishLoginRequest: body.finishLoginRequest })?.sessionKey;
      } catch {
        throw failed();
      }
      if (!sessionKey) throw failed();
      const [acct] = await db.select({ username: accounts.username, backup: accounts.backup }).from(accounts).where(eq(accounts.id, state.accountId));
      if (!acct) throw failed();
      s.log('info', 'login', { account: state.accountId });
      return c.json({ username: acct.username, ...(await issueSession(state.accountId)), backup: acct.backup ? toB64(acct.backup) : null });
    })
    .put('/account/backup', requireAccount(s), valid('json', v.object({ backup: b64Bytes(1, s.config.maxBackupBytes) })), async (c) => {
      const { backup } = c.req.valid('json');
      await db.update(accounts).set({ backup }).where(eq(accounts.id, c.get('auth').accountId));
      return c.body(null, 204);
    })
    .get('/account/backup', requireAccount(s), async (c) => {
      const [row] = await db.select({ backup: accounts.backup }).from(accounts).where(eq(accounts.id, c.get('auth').accountId));
      if (!row?.backup) throw notFound('no_backup', 'no backup stored');
      return c.json({ backup: toB64(row.backup) });
    });
}
