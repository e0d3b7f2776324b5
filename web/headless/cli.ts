/**
 * petrel — the headless client: the same engine as the PWA, over a file-backed profile.
 *
 *   npm run cli -- [--relay URL] [--profile DIR] <command> [args]      (or the `petrel` bin)
 *
 * Output: one JSON object per line on stdout. Errors: one JSON line on stderr
 * ({ "error": code, "message": ... }) and exit status 1.
 */
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { Engine } from '../core/engine.ts';
import type { Fetch } from '../core/net/api.ts';
import type { WsCtor } from '../core/net/socket.ts';
import type { MessageView } from '../core/types.ts';
import { openFileStore } from './file-store.ts';

const USAGE = `usage: petrel [--relay URL] [--profile DIR] <command> [args]

  register <username> <password>         create an account with this profile as its first device
  login <username> <password>            add this profile as a new device (password backup)
  link-code                              print a link code, wait for approval, finish linking
  link-approve <code> [--name NAME] [--history-days N]
                                         approve a new device from this one (sends it the history);
                                         NAME is what your devices call it (default "Device N")
  devices                                list own devices
  remove-device <deviceId>               remove one of your devices
  send <username|group:ID> <text>        send a message ("-": one message per stdin line)
  reply <username|group:ID> <messageId> <text>   reply to a message (ids as printed by history)
  react <username|group:ID> <messageId> <emoji>  react to a message ("" removes your reaction)
  edit <username|group:ID> <messageId> <text>    edit a message you sent
  delete <username|group:ID> <messageId>         delete a message you sent, for everyone
  sync [--wait SECONDS]                  fetch, decrypt, store; print each new message
  history [<username|group:ID>]          every stored message, oldest first
  conversations                          every conversation, newest activity first
  group-create <name> <username>...      create a group
  group-add <ID> <username>              add a member
  group-remove <ID> <username>           remove a member
  group-rename <ID> <name>               rename a group
  group-leave <ID>                       leave a group
  safety-number <username>               the safety number and whether it is verified
  verify <username>                      mark that user's safety number verified
  failures                               envelopes that could not be decrypted

Relay: --relay or PETREL_RELAY (default http://localhost:8787). Profile: --profile or PETREL_PROFILE (default ./petrel-profile).`;

class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
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
  };
}

/** The message `id` in that conversation (its key names the sender, as replies and reactions need). */
async function findMessage(engine: Engine, conv: string, id: string): Promise<MessageView> {
  const m = (await engine.history(conv)).find((x) => x.id === id);
  if (!m) throw new CliError('unknown_message', `No message ${id} in ${conv}; \`history\` lists the ids.`);
  return m;
}

function parse(argv: string[]) {
  const flags: Record<string, string> = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--relay' || a === '--profile' || a === '--wait' || a === '--history-days' || a === '--name') {
      const v = argv[++i];
      if (v === undefined) throw new CliError('usage', `${a} needs a value`);
      flags[a.slice(2)] = v;
    } else if (a === '--help' || a === '-h') flags.help = '1';
    else rest.push(a);
  }
  return { flags, cmd: rest[0], args: rest.slice(1) };
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
  const relay = (flags.relay ?? process.env.PETREL_RELAY ?? 'http://localhost:8787').replace(/\/+$/, '');
  const profile = flags.profile ?? process.env.PETREL_PROFILE ?? './petrel-profile';
  mkdirSync(profile, { recursive: true });
  const store = await openFileStore(profile);
  const engine = await Engine.open({
    store,
    relayUrl: relay,
    fetch: globalThis.fetch as unknown as Fetch,
    WebSocket: WebSocket as unknown as WsCtor,
    deviceName: `petrel CLI on ${hostname()}`.slice(0, 64),
    ...(flags['history-days'] ? { historySpanMs: Number(flags['history-days']) * 86_400_000 } : {}),
  });
  try {
    await run(engine, cmd, args, flags);
  } finally {
    await engine.stop();
    await store.close();
  }
}

function requireAccount(engine: Engine) {
  const s = engine.state();
  if (!s) throw new CliError('not_registered', 'This profile has no account yet: run register, login or link-code first.');
  return s;
}

async function run(engine: Engine, cmd: string, args: string[], flags: Record<string, string>): Promise<void> {
  switch (cmd) {
    case 'register':
      need(args, 2, 'register <username> <password>');
      await engine.register(args[0]!, args[1]!);
      out({ user: engine.state()!.username, device: engine.state()!.deviceId });
      return;
    case 'login':
      need(args, 2, 'login <username> <password>');
      await engine.login(args[0]!, args[1]!);
      await engine.sync({ waitMs: 0 });
      out({ user: engine.state()!.username, device: engine.state()!.deviceId });
      return;
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
    case 'remove-device':
      need(args, 1, 'remove-device <deviceId>');
      requireAccount(engine);
      await engine.removeDevice(args[0]!);
      out({ removed: args[0] });
      return;
    case 'send': {
      need(args, 2, 'send <username|group:ID> <text>');
      requireAccount(engine);
      const conv = await engine.resolve(args[0]!);
      if (args[1] === '-') {
        const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
        for await (const text of rl) if (text.trim()) out(await engine.send(conv, text));
      } else out(await engine.send(conv, args.slice(1).join(' ')));
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
      if (cmd === 'reply') out(await engine.send(conv, rest, { replyTo: target.key }));
      else {
        if ((cmd === 'edit' || cmd === 'delete') && target.from !== engine.state()!.username) throw new CliError('not_yours', 'Only messages you sent can be edited or deleted.');
        if (cmd === 'react') await engine.react(conv, target.key, rest);
        else if (cmd === 'edit') await engine.edit(conv, target.key, rest);
        else await engine.deleteForEveryone(conv, target.key);
        out({ id: target.id, [cmd === 'delete' ? 'deleted' : cmd === 'edit' ? 'edited' : 'reacted']: true });
      }
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
      return;
    }
    case 'history': {
      requireAccount(engine);
      const conv = args[0] ? (args[0].startsWith('group:') ? args[0] : `dm:${args[0].normalize('NFKC').toLowerCase()}`) : undefined;
      for (const m of await engine.history(conv)) out(line(m));
      return;
    }
    case 'conversations':
      requireAccount(engine);
      for (const c of await engine.conversations()) out({ id: c.id, kind: c.kind, title: c.title, members: c.members, unread: c.unread, lastActivity: c.lastActivity, keyWarning: c.keyWarning, left: c.left });
      return;
    case 'group-create': {
      need(args, 2, 'group-create <name> <username>...');
      requireAccount(engine);
      out({ group: await engine.createGroup(args[0]!, args.slice(1)) });
      return;
    }
    case 'group-add':
    case 'group-remove': {
      need(args, 2, `${cmd} <ID> <username>`);
      requireAccount(engine);
      const id = args[0]!.startsWith('group:') ? args[0]! : `group:${args[0]}`;
      await (cmd === 'group-add' ? engine.addMember(id, args[1]!) : engine.removeMember(id, args[1]!));
      const conv = (await engine.conversations()).find((c) => c.id === id)!;
      out({ group: id, members: [engine.state()!.username, ...conv.members] });
      return;
    }
    case 'group-rename': {
      need(args, 2, 'group-rename <ID> <name>');
      const id = args[0]!.startsWith('group:') ? args[0]! : `group:${args[0]}`;
      await engine.renameGroup(id, args.slice(1).join(' '));
      out({ group: id, name: args.slice(1).join(' ') });
      return;
    }
    case 'group-leave': {
      need(args, 1, 'group-leave <ID>');
      const id = args[0]!.startsWith('group:') ? args[0]! : `group:${args[0]}`;
      await engine.leaveGroup(id);
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
      await engine.safetyNumber(args[0]!);
      await engine.markVerified(args[0]!.normalize('NFKC').toLowerCase(), true);
      out({ user: args[0], verified: true });
      return;
    case 'failures':
      for (const f of await engine.failures()) out(f);
      return;
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
