/**
 * Groups live entirely in end-to-end messages: the state (id, name, members, version) travels
 * in 'group' control messages to every member, so the relay never learns membership. Each
 * change bumps the version; receivers apply only newer versions, and only from a member
 * (apply.ts). Messages go to the current members only, so a removed member receives nothing
 * new — the removal itself is sent to them too, so their app knows.
 */
import type { Engine } from './engine.ts';
import { lookUp } from './directory.ts';
import { type GroupState, newId } from './protocol/content.ts';
import { EngineError } from './types.ts';
import { newConversation, newMessageRow } from './views.ts';

const MAX_MEMBERS = 256;

export async function createGroup(engine: Engine, name: string, members: readonly string[]): Promise<string> {
  const ctx = engine.ctx;
  const me = ctx.requireMe().username;
  const title = name.trim();
  if (!title || title.length > 128) throw new EngineError('invalid_name', 'Give the group a name (up to 128 characters).');
  const names = new Set<string>();
  for (const m of members) {
    const list = await lookUp(ctx, m);
    if (list.userId !== me) names.add(list.userId);
  }
  if (names.size + 1 > MAX_MEMBERS) throw new EngineError('too_many_members', `A group has at most ${MAX_MEMBERS} members.`);
  const group: GroupState = { id: newId(ctx.rng), name: title, members: [me, ...names], version: 1 };
  const id = `group:${group.id}`;
  const conv = { ...newConversation(id, 'group', title, [...names], ctx.now()), groupVersion: 1 };
  await engine.enqueue([...names], { t: 'group', id: group.id, ver: 1 }, { type: 'group', action: 'create', group }, (mid, at) => systemRow(me, ctx.requireMe().deviceB64, id, mid, at, `You created the group “${title}”`), conv);
  await engine.drainOutbox();
  return id;
}

export async function changeGroup(engine: Engine, groupId: string, action: 'add' | 'remove' | 'rename' | 'leave', arg: string): Promise<void> {
  const ctx = engine.ctx;
  const me = ctx.requireMe().username;
  const { conv } = await engine.route(groupId);
  if (conv.kind !== 'group') throw new EngineError('not_a_group', 'That conversation is not a group.');
  let members = [me, ...conv.members];
  let name = conv.title;
  let subject: string | undefined;
  let text: string;
  if (action === 'add') {
    const user = (await lookUp(ctx, arg)).userId;
    if (members.includes(user)) throw new EngineError('already_member', `${user} is already in the group.`);
    members = [...members, user];
    subject = user;
    text = `You added ${user}`;
  } else if (action === 'remove') {
    if (!conv.members.includes(arg)) throw new EngineError('not_member', `${arg} is not in the group.`);
    members = members.filter((m) => m !== arg);
    subject = arg;
    text = `You removed ${arg}`;
  } else if (action === 'leave') {
    members = members.filter((m) => m !== me);
    text = 'You left';
  } else {
    name = arg.trim();
    if (!name || name.length > 128) throw new EngineError('invalid_name', 'Give the group a name (up to 128 characters).');
    text = `You renamed the group to “${name}”`;
  }
  const group: GroupState = { id: groupId.slice(6), name, members, version: conv.groupVersion + 1 };
  // Everyone in the old or new state hears of the change (a removed member learns it was removed).
  const to = [...new Set([...conv.members, ...members])].filter((m) => m !== me);
  const others = members.filter((m) => m !== me);
  const next = { ...conv, title: name, members: others, groupVersion: group.version, left: action === 'leave', lastActivity: ctx.now() };
  await engine.enqueue(to, { t: 'group', id: group.id, ver: group.version }, { type: 'group', action, group, ...(subject ? { subject } : {}) }, (mid, at) => systemRow(me, ctx.requireMe().deviceB64, groupId, mid, at, text), next);
  await engine.drainOutbox();
}

function systemRow(me: string, device: string, conversation: string, id: string, at: number, text: string) {
  return newMessageRow({ id, conversation, sender: me, senderDevice: device, sentAt: at, receivedAt: at, text, status: 'sent', system: true });
}
