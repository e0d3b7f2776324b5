/**
 * petrel — the headless client: the same engine as the PWA, over a file-backed profile.
 *
 *   npm run cli -- [--relay URL] [--profile DIR] <command> [args]      (or the `petrel` bin)
 *
 * Output: one JSON object per line on stdout. Errors: one JSON line on stderr
 * ({ "error": code, "message": ... }) and exit status 1.
 */
import { hostname } from 'node:os';
import { allMessages, decryptFailures } from '../core/views.ts';
import { discardFailed } from '../core/changes.ts';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { deviceNameOrDefault } from '../core/account.ts';
import { nameWithShortId } from '../core/device-id.ts';
import { Engine } from '../core/engine.ts';
import type { WsCtor } from '../core/net/socket.ts';
import { changeFailure, sendFailure } from '../core/explain.ts';
import type { ChangeKind, MessageView } from '../core/types.ts';
import { checkNewPassword, CliError, MIN_PASSWORD_LENGTH, parse, relayUrl } from './cli-options.ts';
import { explain, logoutFailed, refusedError, relayFetch } from './cli-errors.ts';
import { RelayError } from '../core/net/api.ts';
import { type OpenProfile, openProfile } from './cli-profile.ts';
import { type MessageChange, watchMessageChanges } from './message-changes.ts';

const USAGE = `usage: petrel [--relay URL] [--profile DIR] <command> [args]

  register <username> <password> [--name NAME]
                                         create an account with this profile as its first device
                                         (passwords: at least ${MIN_PASSWORD_LENGTH} characters)
  login <username> <password> [--name NAME]
                                         add this profile as a new device (password backup);
                                         NAME is what your devices call this one
                                         (default "petrel CLI on <hostname> · <short id>")
  link-code                              print a link code, wait for approval, finish linking
  link-approve <code> [--name NAME] [--history-days N]
                                         approve a new device from this one (sends it the history);
                                         NAME is what your devices call it (default "Device N")
  devices                                list own devices: deviceId, shortId (the id the app
                                         shows under each device), name, addedAt (ms)
  remove-device <deviceId|shortId>       remove one of your devices
  signin <password>                      sign this device in again when the relay no longer accepts
                                         its token (another session replaced it, or the relay's
                                         data was restored) but the account still lists it: a new
                                         token, history kept, waiting messages sent ("-": read
                                         the password from stdin); \`sync\` then prints what came
  logout [--force]                       remove THIS device from the account (your other devices
                                         see it go), then erase this profile: keys, messages, all;
                                         refused on the account's only device unless --force
                                         (its history exists nowhere else and would be lost)
  send <username|group:ID> <text>        send a message ("-": one message per stdin line)
  reply <username|group:ID> <messageId> <text>   reply to a message (ids as printed by history)
  react <username|group:ID> <messageId> <emoji>  react to a message ("" removes your reaction)
  edit <username|group:ID> <messageId> <text>    edit a message you sent
  delete <username|group:ID> <messageId>         delete a message you sent, for everyone
  sync [--wait SECONDS]                  fetch, decrypt, store; print each new message, then each
                                         reaction, edit and delete ({"event":...})
  history [<username|dm:NAME|group:ID>]  every stored message, oldest first
  conversations                          every conversation, newest activity first
  group-create <name> <username>...      create a group
  group-add <ID> <username>              add a member
  group-remove <ID> <username>           remove a member
  group-rename <ID> <name>               rename a group
  group-leave <ID>                       leave a group
  safety-number <username>               the safety number and whether it is verified
  verify <username>                      mark that user's safety number verified
  failures                               what failed here: envelopes that could not be decrypted
                                         ("kind":"undecryptable"), then messages, reactions, edits
                                         and deletes of yours the relay refused ("kind":"send",
                                         "reaction", "edit", "delete"; "reason" says why in words)
  retry <id>                             send a refused message, reaction, edit or delete again
                                         (id as failures prints it; the same id, so nobody gets it twice)
  discard <id>                           give it up: a refused message is removed here (nobody
                                         got it); a refused reaction, edit or delete is undone
                                         here, so the message shows what the others see

Relay: --relay or PETREL_RELAY (default http://localhost:8787). Profile: --profile or PETREL_PROFILE (default ./petrel-profile);
register, login and link-code create it, every other command needs it to exist.`;

const COMMANDS = new Set(['register', 'login', 'signin', 'link-code', 'link-approve', 'devices', 'remove-device', 'logout', 'send', 'reply', 'react', 'edit', 'delete', 'sync', 'history', 'conversations', 'group-create', 'group-add', 'group-remove', 'group-rename', 'group-leave', 'safety-number', 'verify', 'failures', 'retry', 'discard']);
/** The commands that make this profile a device, and so may create the profile folder. */
const CREATES_PROFILE = new Set(['register', 'login', 'link-code']);

/**
 * The engine's 'error' events that are not a refused message (web/core/after.ts, engine.ts): every
 * other one comes from the outbox, with the relay's code, when the relay refused a message.
 */
const NOT_REFUSALS = new Set(['after_failed', 'undecryptable', 'history_failed', 'device_removed', 'signed_out']);

/** One command's run: the engine and what the CLI learns from it on the way. */
interface Session {
  readonly engine: Engine;
  readonly relay: string;
  /** Relay error codes of messages the relay refused this run (the outbox drops those, reporting each as an 'error' event). */
  readonly refused: string[];
  /** Reactions, edits and deletes this run stored (only watched during `sync`). */
  readonly changes: MessageChange[];
  /** Set by `logout` once the relay has the device list without this device: the profile is to be erased. */
  logout?: { readonly user: string; readonly device: string; readonly alreadyRemoved: boolean; readonly onlyDevice: boolean };
}

const out = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');

function line(m: MessageView) {
  return {
    id: m.id,
    conversation: m.conversation,
    from: m.from,
    fromDevice: m.fromDevice,
    text: m.text,
    sentAt: m.sentAt,
    ...(m.system ? { system: true } : {}),
    ...(m.replyTo ? { replyTo: m.replyTo.split('/').pop() } : {}),
    ...(Object.keys(m.reactions).length ? { reactions: m.reactions } : {}),
    ...(m.edited ? { edited: true } : {}),
    ...(m.deleted ? { deleted: true } : {}),
    ...(m.attachment ? { attachment: m.attachment } : {}),
    // Ours, refused by the relay: said here too, so that `history` shows what `failures` lists.
    ...(m.failure ? { failed: { code: m.failure.code, reason: sendFailure(m.failure.code, RETRY_WORDS) } } : {}),
    ...(m.failedChanges.length ? { failedChanges: m.failedChanges.map((f) => ({ id: f.id, kind: f.kind, ...(f.kind === 'reaction' ? { emoji: f.emoji } : {}), code: f.code, reason: changeFailure(f.kind, f.code, RETRY_WORDS) })) } : {}),
  };
}

/** The end of a refusal's words when its code has no sentence of its own: the PWA says “Tap Retry”. */
const RETRY_WORDS = 'Run `petrel retry <id>` to send it again, or `petrel discard <id>` to give it up (`petrel failures` lists the ids).';

/**
 * A message, reaction, edit or delete of ours that the relay refused for good and that is kept
 * to retry or discard: a failed send (MessageView.failure) or a failed change (failedChanges).
 * `id` is what `retry` and `discard` take: the message's own id for a send, the change's for a change.
 */
interface Failed {
  readonly kind: 'send' | ChangeKind;
  readonly id: string;
  readonly message: MessageView;
  readonly code: string;
  readonly emoji?: string;
}

function failedOf(m: MessageView): Failed[] {
  return [
    ...(m.failure ? [{ kind: 'send' as const, id: m.id, message: m, code: m.failure.code }] : []),
    ...m.failedChanges.map((f) => ({ kind: f.kind, id: f.id, message: m, code: f.code, ...(f.kind === 'reaction' ? { emoji: f.emoji } : {}) })),
  ];
}

/** A failure as `failures` prints it. */
function failedLine(f: Failed) {
  return {
    kind: f.kind,
    id: f.id,
    conversation: f.message.conversation,
    ...(f.kind === 'send' ? { text: f.message.text } : { messageId: f.message.id }),
    ...(f.emoji !== undefined ? { emoji: f.emoji } : {}),
    code: f.code,
    reason: f.kind === 'send' ? sendFailure(f.code, RETRY_WORDS) : changeFailure(f.kind, f.code, RETRY_WORDS),
  };
}

/**
 * The failure `id` names, for `retry` and `discard`; a clear error for an id that names nothing
 * here, or a message of which nothing failed (with the ids of its failed changes, if any).
 */
async function findFailed(engine: Engine, id: string, cmd: string): Promise<Failed> {
  const me = engine.state()!.username;
  const messages = await allMessages(engine.ctx.store);
  const change = messages.flatMap(failedOf).find((f) => f.kind !== 'send' && f.id === id);
  if (change) return change;
  // Message ids are unique per sender only: ours first, as only ours can have failed.
  const m = messages.find((x) => x.id === id && x.from === me) ?? messages.find((x) => x.id === id);
  if (!m) throw new CliError('unknown_failure', `Nothing “${id}” to ${cmd} here: \`petrel failures\` lists what failed, with the ids ${cmd} takes.`);
  if (m.failure) return failedOf(m)[0]!;
  const changes = m.failedChanges.map((f) => `${f.kind} ${f.id}`);
  const state = m.from !== me ? `is ${m.from}’s message` : m.status === 'pending' ? 'is still waiting to be sent (it goes out by itself; `sync` tries again)' : 'was not refused';
  throw new CliError(
    'not_failed',
    `Message ${id} ${state}: there is nothing to ${cmd}.${changes.length ? ` ${changes.length > 1 ? 'Changes' : 'A change'} of yours to it failed (${changes.join(', ')}): \`petrel ${cmd}\` takes ${changes.length > 1 ? 'their ids' : 'its id'}.` : ''}`,
  );
}

/** The message `id` in that conversation (its key names the sender, as replies and reactions need). */
async function findMessage(engine: Engine, conv: string, id: string): Promise<MessageView> {
  const m = (await allMessages(engine.ctx.store, conv)).find((x) => x.id === id);
  if (!m) throw new CliError('unknown_message', `No message ${id} in ${conv}; \`history\` lists the ids.`);
  return m;
}

function need(args: string[], n: number, what: string): void {
  if (args.length < n) throw new CliError('usage', `usage: petrel ${what}`);
}

async function main(): Promise<void> {
  const { flags, cmd, args } = parse(process.argv.slice(2));
  if (!cmd || flags.help) {
    process.stdout.write(USAGE + '\n');
    if (!cmd && !flags.help) process.exitCode = 1;
    return;
  }
  if (!COMMANDS.has(cmd)) throw new CliError('usage', `unknown command “${cmd}” (petrel --help lists them)`);
  if (flags.force && cmd !== 'logout') throw new CliError('usage', '--force is only for logout');
  const relay = relayUrl(flags.relay ?? process.env.PETREL_RELAY ?? 'http://localhost:8787', flags.relay ? '--relay' : process.env.PETREL_RELAY ? 'PETREL_RELAY' : 'the default relay');
  const dir = flags.profile ?? process.env.PETREL_PROFILE ?? './petrel-profile';
  const profile = await openProfile(dir, { create: CREATES_PROFILE.has(cmd) });
  const changes: MessageChange[] = [];
  const store = cmd === 'sync' ? watchMessageChanges(profile.store, (c) => changes.push(...c)) : profile.store;
  const network = { last: '' };
  let engine: Engine | undefined;
  let session: Session | undefined;
  let account: string | null = null;
  let ok = false;
  try {
    engine = await Engine.open({
      store,
      relayUrl: relay,
      fetch: relayFetch(network),
      WebSocket: WebSocket as unknown as WsCtor,
      deviceName: flags.name?.trim() ? deviceNameOrDefault(flags.name, '') : (shortId: string) => nameWithShortId(`petrel CLI on ${hostname()}`, shortId),
      ...(flags['history-days'] ? { historySpanMs: Number(flags['history-days']) * 86_400_000 } : {}),
    });
    account = engine.state()?.username ?? null;
    const s: Session = (session = { engine, relay, refused: [], changes });
    engine.on((e) => {
      if (e.type === 'error' && !NOT_REFUSALS.has(e.code)) s.refused.push(e.code);
    });
    await run(s, cmd, args, flags);
    ok = true;
  } catch (e) {
    // A refused token: the engine asks the account's device list why; stop() lets it finish.
    if (engine?.tokenRefused) await engine.stop();
    const explained = explain(e, relay, network.last, account, engine);
    throw cmd === 'logout' ? logoutFailed(explained) : explained;
  } finally {
    const hasAccount = engine?.state() != null;
    await engine?.stop();
    await store.close();
    // A failed register, login or link leaves no half-made profile behind.
    if (!ok && !hasAccount) profile.discard();
  }
  if (session?.logout) eraseProfile(profile, dir, session.logout);
}

/**
 * The second half of `logout`, once the relay has the device list without this device and the
 * store is closed: the profile's files go. If they cannot (another process opened the profile
 * meanwhile, a permission), the device is still off the account, and `logout` again erases it.
 */
function eraseProfile(profile: OpenProfile, dir: string, done: NonNullable<Session['logout']>): void {
  let kept: string[];
  try {
    kept = profile.erase();
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new CliError(
      'erase_failed',
      `This device ${done.alreadyRemoved ? 'was already' : 'is now'} removed from ${done.user}’s account, but its profile at ${dir} could not be erased (${why}): run logout again to erase it.`,
    );
  }
  out({
    user: done.user,
    device: done.device,
    loggedOut: true,
    alreadyRemoved: done.alreadyRemoved,
    ...(done.onlyDevice ? { onlyDevice: true } : {}),
    erased: dir,
    // Files in the folder that are not the profile's, left with it.
    ...(kept.length ? { kept } : {}),
  });
}

function requireAccount(engine: Engine) {
  const s = engine.state();
  if (!s) throw new CliError('not_registered', 'This profile has no account yet: run register, login or link-code first.');
  return s;
}

/** The relay refused this device's token: main's catch says why, once the engine checked (explain). */
const tokenRefused = () => new RelayError(401, 'unauthorized', 'the relay refused this device’s token');

/** Fails the command if the relay refused what it just sent (the outbox reports that as an 'error' event and drops the message). */
function sent(s: Session): void {
  // A removed or signed-out device's engine keeps what it could not send and stops: no refusal
  // event, but the command did not do what was asked.
  if (s.engine.tokenRefused) throw tokenRefused();
  if (s.refused.length) throw refusedError(s.refused.at(-1)!, s.relay, s.engine.state()!.username);
}

async function send(s: Session, conv: string, text: string, opts: { replyTo?: string } = {}): Promise<void> {
  const r = await s.engine.send(conv, text, opts);
  out(r);
  if (s.engine.tokenRefused) throw tokenRefused();
  if (r.status !== 'failed') return;
  const code = s.refused.at(-1) ?? 'unknown';
  throw code === 'unauthorized' ? refusedError(code, s.relay, s.engine.state()!.username) : refusedKept({ kind: 'send', id: r.id, code }, false);
}

/**
 * A message, reaction, edit or delete the relay refused for good: kept here as failed (the
 * engine records it), so the error says what the others see and which id `retry` and `discard` take.
 */
function refusedKept(f: Pick<Failed, 'kind' | 'id' | 'code'>, again: boolean): CliError {
  const what = (f.kind === 'send' ? sendFailure(f.code, '') : changeFailure(f.kind, f.code, '')).trim();
  const undo = f.kind === 'send' ? 'removes it here' : 'undoes it here, so the message shows what the others see';
  return new CliError('send_failed', `${what} (The relay refused it${again ? ' again' : ''}: ${f.code}.) It is kept: \`petrel retry ${f.id}\` sends it again, \`petrel discard ${f.id}\` ${undo}.`);
}

const CHANGE_OF: Readonly<Record<string, ChangeKind>> = { react: 'reaction', edit: 'edit', delete: 'delete' };

/**
 * A conversation as `conversations` and `sync` print it (dm:NAME, group:ID), or a username or
 * bare group id; one that is not stored here is an error, not an empty history.
 */
async function conversationArg(engine: Engine, arg: string): Promise<string> {
  const name = (n: string) => n.normalize('NFKC').toLowerCase();
  const candidates = arg.startsWith('group:') ? [arg] : arg.startsWith('dm:') ? [`dm:${name(arg.slice(3))}`] : [`dm:${name(arg)}`, `group:${arg}`];
  const known = new Set((await engine.conversations()).map((c) => c.id));
  const id = candidates.find((c) => known.has(c));
  if (!id) throw new CliError('unknown_conversation', `No conversation “${arg}” in this profile; \`conversations\` lists them.`);
  return id;
}

/**
 * `logout` up to the erase: this device off the account's list, as the PWA's "Log out of this
 * device" does (Engine.logOut: a new device list without it, signed with the account key), so
 * the relay stops its token and the other devices stop encrypting to it. Nothing is erased
 * here: main erases the profile only after this returned, so a relay that refuses or cannot be
 * reached leaves the profile as it was. A device already off the list (removed from another
 * device) has nothing to tell the relay, and is only erased.
 */
async function logOut(engine: Engine, force: boolean): Promise<NonNullable<Session['logout']>> {
  const me = requireAccount(engine);
  const done = (alreadyRemoved: boolean, onlyDevice = false) => ({ user: me.username, device: me.deviceId, alreadyRemoved, onlyDevice });
  // Known removed (the relay refused this device's token before): no request to make.
  if (engine.removed) return done(true);
  // From the relay, not a cached copy: whether another device removed this one already, and
  // whether there is any other device to keep the history.
  const devices = await engine.devices();
  if (!devices.some((d) => d.current)) return done(true);
  const only = devices.length === 1;
  if (only && !force) {
    throw new CliError(
      'only_device',
      `This is the only device on ${me.username}’s account: your message history exists nowhere else, and logging out erases it for good (logging in again with your password does not bring the old messages back). Link another device first (link-code there, link-approve here), or run logout --force to log out and lose the history.`,
    );
  }
  try {
    await engine.logOut();
  } catch (e) {
    // Removed from another device between the list above and ours.
    if ((e as { code?: unknown }).code === 'unknown_device') return done(true);
    throw e;
  }
  return done(false, only);
}

/** The first line of stdin (a password kept out of the command line). */
async function firstLine(): Promise<string> {
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const l of rl) {
    rl.close();
    return l;
  }
  throw new CliError('usage', 'signin -: no password on stdin');
}

const groupArg = (arg: string) => (arg.startsWith('group:') ? arg : `group:${arg}`);

async function run(s: Session, cmd: string, args: string[], flags: Record<string, string>): Promise<void> {
  const { engine } = s;
  switch (cmd) {
    case 'register':
      need(args, 2, 'register <username> <password> [--name NAME]');
      checkNewPassword(args[1]!);
      await engine.register(args[0]!, args[1]!);
      out({ user: engine.state()!.username, device: engine.state()!.deviceId });
      return;
    case 'login':
      need(args, 2, 'login <username> <password> [--name NAME]');
      await engine.login(args[0]!, args[1]!);
      await engine.sync({ waitMs: 0 });
      out({ user: engine.state()!.username, device: engine.state()!.deviceId });
      return;
    case 'signin': {
      need(args, 1, 'signin <password> ("-": read it from stdin)');
      const me = requireAccount(engine);
      const password = args[0] === '-' ? await firstLine() : args[0]!;
      await engine.signIn(password);
      await engine.drainOutbox();
      out({ user: me.username, device: me.deviceId, signedIn: true });
      return;
    }
    case 'link-code': {
      const link = await engine.startLink();
      out({ code: link.code });
      await link.done;
      // The history follows the account key; give it a moment to arrive.
      await engine.sync({ waitMs: 2000 });
      out({ user: engine.state()!.username, device: engine.state()!.deviceId, linked: true });
      return;
    }
    case 'link-approve': {
      need(args, 1, 'link-approve <code>');
      requireAccount(engine);
      const r = await engine.approveLink(args[0]!, flags.name ? { name: flags.name } : {});
      out({ device: r.deviceId, name: r.name, approved: true });
      return;
    }
    case 'devices':
      requireAccount(engine);
      for (const d of await engine.devices()) out(d);
      return;
    case 'remove-device': {
      need(args, 1, 'remove-device <deviceId|shortId>');
      requireAccount(engine);
      const arg = args[0]!;
      // The full id, or the short one as the app shows it (spaces and case do not matter).
      const short = arg.replace(/[\s-]+/g, '').toUpperCase();
      const found = (await engine.devices()).find((d) => d.deviceId === arg || d.shortId.replace(' ', '') === short);
      // Checked here so that any argument that is not one of ours, well-formed or not, gets the same answer.
      if (!found) throw new CliError('unknown_device', `No device “${arg}” on this account; \`devices\` lists their ids.`);
      await engine.removeDevice(found.deviceId);
      out({ removed: found.deviceId });
      return;
    }
    case 'logout':
      if (args.length) throw new CliError('usage', 'usage: petrel logout [--force] (it removes this device; remove-device <deviceId> removes another)');
      s.logout = await logOut(engine, flags.force === '1');
      return;
    case 'send': {
      need(args, 2, 'send <username|group:ID> <text>');
      requireAccount(engine);
      const conv = await engine.resolve(args[0]!);
      if (args[1] === '-') {
        const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
        for await (const text of rl) if (text.trim()) await send(s, conv, text);
      } else await send(s, conv, args.slice(1).join(' '));
      return;
    }
    case 'reply':
    case 'react':
    case 'edit':
    case 'delete': {
      const usage = { reply: 'reply <conversation> <messageId> <text>', react: 'react <conversation> <messageId> <emoji>', edit: 'edit <conversation> <messageId> <text>', delete: 'delete <conversation> <messageId>' }[cmd];
      need(args, cmd === 'delete' ? 2 : cmd === 'react' ? 2 : 3, usage);
      requireAccount(engine);
      const conv = await engine.resolve(args[0]!);
      const target = await findMessage(engine, conv, args[1]!);
      const rest = args.slice(2).join(' ');
      if (cmd === 'reply') return send(s, conv, rest, { replyTo: target.key });
      if ((cmd === 'edit' || cmd === 'delete') && target.from !== engine.state()!.username) throw new CliError('not_yours', 'Only messages you sent can be edited or deleted.');
      if (cmd === 'react') await engine.react(conv, target.key, rest);
      else if (cmd === 'edit') await engine.edit(conv, target.key, rest);
      else await engine.deleteForEveryone(conv, target.key);
      if (s.refused.length && !engine.tokenRefused) {
        // Refused for good: the engine kept it on the message, to retry or discard.
        const now = (await allMessages(engine.ctx.store, conv)).find((m) => m.key === target.key);
        const kept = now && failedOf(now).find((f) => f.kind === CHANGE_OF[cmd]);
        if (kept) throw refusedKept(kept, false);
      }
      sent(s);
      out({ id: target.id, [cmd === 'delete' ? 'deleted' : cmd === 'edit' ? 'edited' : 'reacted']: true });
      return;
    }
    case 'sync': {
      requireAccount(engine);
      const wait = flags.wait ? Number(flags.wait) : 0;
      if (!Number.isFinite(wait) || wait < 0) throw new CliError('usage', '--wait takes a number of seconds');
      const seen = new Set<string>();
      engine.on((e) => {
        if (e.type === 'device-added') out({ event: 'device-added', device: e.deviceId, name: e.name });
        if (e.type === 'key-changed') out({ event: 'key-changed', user: e.user });
      });
      for (const m of await engine.sync({ waitMs: wait * 1000 })) {
        if (seen.has(m.conversation + m.id)) continue;
        seen.add(m.conversation + m.id);
        out(line(m));
      }
      // After the new messages, so a change to a message that arrived in this same sync follows it.
      for (const c of s.changes) out(c);
      return;
    }
    case 'history': {
      requireAccount(engine);
      const conv = args[0] ? await conversationArg(engine, args[0]) : undefined;
      for (const m of await allMessages(engine.ctx.store, conv)) out(line(m));
      return;
    }
    case 'conversations':
      requireAccount(engine);
      for (const c of await engine.conversations()) out({ id: c.id, kind: c.kind, title: c.title, members: c.members, unread: c.unread, lastActivity: c.lastActivity, keyWarning: c.keyWarning, left: c.left });
      return;
    case 'group-create': {
      need(args, 2, 'group-create <name> <username>...');
      requireAccount(engine);
      const group = await engine.createGroup(args[0]!, args.slice(1));
      sent(s);
      out({ group });
      return;
    }
    case 'group-add':
    case 'group-remove': {
      need(args, 2, `${cmd} <ID> <username>`);
      requireAccount(engine);
      const id = groupArg(args[0]!);
      await (cmd === 'group-add' ? engine.addMember(id, args[1]!) : engine.removeMember(id, args[1]!));
      sent(s);
      const conv = (await engine.conversations()).find((c) => c.id === id)!;
      out({ group: id, members: [engine.state()!.username, ...conv.members] });
      return;
    }
    case 'group-rename': {
      need(args, 2, 'group-rename <ID> <name>');
      requireAccount(engine);
      const id = groupArg(args[0]!);
      await engine.renameGroup(id, args.slice(1).join(' '));
      sent(s);
      out({ group: id, name: args.slice(1).join(' ') });
      return;
    }
    case 'group-leave': {
      need(args, 1, 'group-leave <ID>');
      requireAccount(engine);
      const id = groupArg(args[0]!);
      await engine.leaveGroup(id);
      sent(s);
      out({ group: id, left: true });
      return;
    }
    case 'safety-number': {
      need(args, 1, 'safety-number <username>');
      requireAccount(engine);
      const sn = await engine.safetyNumber(args[0]!);
      out({ digits: sn.digits, verified: sn.verified, ...(sn.keyChanged ? { keyChanged: true } : {}) });
      return;
    }
    case 'verify':
      need(args, 1, 'verify <username>');
      requireAccount(engine);
      await engine.safetyNumber(args[0]!);
      await engine.markVerified(args[0]!.normalize('NFKC').toLowerCase(), true);
      out({ user: args[0], verified: true });
      return;
    case 'failures':
      requireAccount(engine);
      for (const f of await decryptFailures(engine.ctx.store)) out({ kind: 'undecryptable', ...f });
      for (const m of await allMessages(engine.ctx.store)) for (const f of failedOf(m)) out(failedLine(f));
      return;
    case 'retry': {
      need(args, 1, 'retry <id> (as `failures` prints it)');
      requireAccount(engine);
      const f = await findFailed(engine, args[0]!, 'retry');
      const conv = f.message.conversation;
      if (f.kind === 'send') await engine.retry(conv, f.message.key);
      else await engine.retryChange(conv, f.message.key, f.id);
      if (engine.tokenRefused) throw tokenRefused();
      // As it now stands: through, refused again (kept again, with the relay's code), or still
      // waiting for the relay (it goes out with the next command that reaches it, such as sync).
      const now = (await allMessages(engine.ctx.store, conv)).find((m) => m.key === f.message.key);
      const again = now && failedOf(now).find((x) => x.id === f.id);
      if (again) throw refusedKept(again, true);
      const waiting = await engine.ctx.store.read(['outbox'], (tx) => tx.get('outbox', f.id));
      out({ id: f.id, kind: f.kind, conversation: conv, ...(f.kind === 'send' ? {} : { messageId: f.message.id }), status: waiting ? 'pending' : 'sent' });
      return;
    }
    case 'discard': {
      need(args, 1, 'discard <id> (as `failures` prints it)');
      requireAccount(engine);
      const f = await findFailed(engine, args[0]!, 'discard');
      const conv = f.message.conversation;
      if (f.kind === 'send') await discardFailed(engine.ctx, conv, f.message.key);
      else await engine.discardChange(conv, f.message.key, f.id);
      out({ id: f.id, kind: f.kind, conversation: conv, ...(f.kind === 'send' ? {} : { messageId: f.message.id }), discarded: true });
      return;
    }
    default:
      throw new CliError('usage', `unknown command “${cmd}” (petrel --help lists them)`);
  }
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (e: any) => {
    const code = typeof e?.code === 'string' ? e.code : 'error';
    process.stderr.write(JSON.stringify({ error: code, message: e instanceof Error ? e.message : String(e) }) + '\n');
    process.exit(1);
  },
);
