// Keyboard-only and screen-reader use of the signed-in PWA, in Debian's Chromium: side panels take
// focus and give it back (Escape), the chat list is one tab stop with arrow keys, a conversation
// opens at its newest message and does not move while the reader is further up (a "new messages"
// button instead), arriving messages are read out from a polite log, focus survives sending,
// replying, deleting (after its confirm dialog) and toasts; every control is named and shows a
// focus ring. Driven with page.keyboard wherever a person would press a key.
import type { Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { uniqueName } from '../relay/harness.ts';
import { announceChromium, enter, hasChromium, type Lab, shot, startLab, unnamedControls } from './harness.ts';

announceChromium('keyboard.test.ts');

const register = (page: Page, name: string) => enter(page, 'Create account', name);

/** Whether focus is on (or inside) what the locator finds. */
const holds = (l: Locator) => l.evaluate((el) => el.contains(document.activeElement));
const focusIsOn = (l: Locator) => expect.poll(() => holds(l), { timeout: 10_000 }).toBe(true);
/** Focus the control and press a key on it, as Tab + key would. */
async function press(l: Locator, key = 'Enter') {
  await l.focus();
  await l.press(key);
}
/** Where the message list is scrolled, and how far it can go (found by trying: Chromium's flex
 * scrollers end a little short of scrollHeight - clientHeight). */
const scroll = (page: Page) =>
  page.locator('.messages').evaluate((el) => {
    const top = el.scrollTop;
    el.scrollTop = el.scrollHeight;
    const max = el.scrollTop;
    el.scrollTop = top;
    return { top, max };
  });
const atNewest = (page: Page) => expect.poll(async () => { const s = await scroll(page); return s.max - s.top; }, { timeout: 10_000 }).toBeLessThan(2);

describe.skipIf(!hasChromium)('keyboard and screen reader', () => {
  let lab: Lab;
  const alice = uniqueName('alice');
  const bob = uniqueName('bob');
  const carol = uniqueName('carol');
  let a: Page, b: Page, c: Page;
  const composer = (p: Page) => p.getByLabel('Message', { exact: true });

  beforeAll(async () => {
    lab = await startLab();
    ({ page: a } = await lab.device('kb alice desktop'));
    ({ page: b } = await lab.device('kb bob desktop'));
    await register(a, alice);
    await register(b, bob);
  }, 180_000);
  afterAll(async () => lab?.close());

  test('side panels take focus, are named, and Escape gives focus back to what opened them', async () => {
    for (const [opener, name, field] of [['New chat', 'New chat', 'Username'], ['New group', 'New group', 'Group name']] as const) {
      const button = a.getByRole('button', { name: opener, exact: true });
      await press(button);
      const panel = a.getByRole('dialog', { name });
      await panel.waitFor();
      await focusIsOn(panel.getByLabel(field)); // a form: its first field
      await a.keyboard.press('Escape');
      await expect.poll(() => panel.count()).toBe(0);
      await focusIsOn(button);
    }
    const settings = a.getByRole('button', { name: 'Settings' });
    await press(settings);
    await focusIsOn(a.getByRole('dialog', { name: 'Settings' }).getByRole('heading', { name: 'Settings' })); // information: its heading
    await a.keyboard.press('Tab');
    await focusIsOn(a.getByRole('button', { name: 'Close' }));
    await a.keyboard.press('Enter'); // Close, like Escape, hands focus back
    await focusIsOn(settings);

    // A chat started from the panel: the composer has focus, the words go straight in.
    await press(a.getByRole('button', { name: 'New chat', exact: true }));
    await a.keyboard.type(bob);
    await a.keyboard.press('Enter');
    await a.getByRole('heading', { name: bob }).waitFor();
    await focusIsOn(composer(a));
    await a.keyboard.type('Hello Bob, typed without touching the mouse');
    await a.keyboard.press('Enter');
    await a.locator('.bubble .text', { hasText: 'typed without touching' }).waitFor();
    await focusIsOn(composer(a)); // after sending, still in the composer
    expect(await composer(a).inputValue()).toBe('');

    const info = a.getByRole('button', { name: 'Contact info' });
    await press(info);
    const contact = a.getByRole('dialog', { name: `Contact info: ${bob}` });
    await focusIsOn(contact.getByRole('heading', { name: bob }));
    await a.keyboard.press('Escape');
    await focusIsOn(info);
    expect(await unnamedControls(a)).toEqual([]);
  }, 90_000);

  test('an open panel is a modal dialog: the page behind is inert, Tab goes round inside, a press outside closes it', async () => {
    const settings = a.getByRole('button', { name: 'Settings' });
    await press(settings);
    const dialog = a.getByRole('dialog', { name: 'Settings' });
    await focusIsOn(dialog.getByRole('heading', { name: 'Settings' }));
    expect(await dialog.getAttribute('aria-modal')).toBe('true');
    // Behind it, the list and the conversation are out of reach; the toasts' live regions are not.
    const inert = (l: Locator) => l.evaluate((el) => !!el.closest('[inert]'));
    expect(await inert(a.getByRole('navigation', { name: 'Conversations' }))).toBe(true);
    expect(await inert(a.locator('.conversation'))).toBe(true);
    expect(await inert(a.locator('.toasts'))).toBe(false);
    await a.keyboard.press('Shift+Tab'); // from the heading, round to the last control
    await focusIsOn(dialog.getByRole('button', { name: 'Log out of this device' }));
    await a.keyboard.press('Tab'); // and from the last on to the first
    await focusIsOn(dialog.getByRole('button', { name: 'Close' }));
    for (const key of ['Tab', 'Shift+Tab']) {
      for (let i = 0; i < 12; i++) {
        await a.keyboard.press(key);
        expect(await holds(dialog), `${key} #${i + 1}`).toBe(true);
      }
    }
    // A click on the page behind closes the panel and hands focus back (not left on <body>);
    // nothing behind stays inert.
    const row = a.getByRole('navigation', { name: 'Conversations' }).getByRole('button', { name: new RegExp(bob) });
    const box = (await row.boundingBox())!;
    await a.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    await expect.poll(() => dialog.count()).toBe(0);
    expect(await a.locator('[inert]').count()).toBe(0);
    await focusIsOn(settings);
    // A drag that starts in the panel and ends outside (selecting its text) does not close it.
    await press(settings);
    const heading = (await dialog.getByRole('heading', { name: 'Settings' }).boundingBox())!;
    await a.mouse.move(heading.x + 2, heading.y + heading.height / 2);
    await a.mouse.down();
    await a.mouse.move(box.x + box.width / 2, box.y + box.height / 2, { steps: 4 });
    await a.mouse.up();
    expect(await dialog.count()).toBe(1);

    // Escape closes it even when focus is on the page (where a press on the inert background leaves it).
    await a.evaluate(() => (document.activeElement as HTMLElement).blur());
    await a.keyboard.press('Escape');
    await expect.poll(() => dialog.count()).toBe(0);
    await focusIsOn(settings);
  }, 60_000);

  test('a group: created from the keyboard, its info panel takes focus and gives it back', async () => {
    ({ page: c } = await lab.device('kb carol phone'));
    await register(c, carol);
    await press(a.getByRole('button', { name: 'New group', exact: true }));
    await a.keyboard.type('Harbour crew');
    await a.keyboard.press('Tab');
    await a.keyboard.type(`${bob}, ${carol}`);
    await a.keyboard.press('Enter');
    await a.getByRole('heading', { name: 'Harbour crew' }).waitFor({ timeout: 15_000 });
    await focusIsOn(composer(a));
    const info = a.getByRole('button', { name: 'Group info' });
    await press(info);
    await focusIsOn(a.getByRole('dialog', { name: 'Group info' }).getByRole('heading', { name: 'Group info' }));
    await a.keyboard.press('Escape');
    await focusIsOn(info);
    await a.keyboard.type('x'); // nothing lands in a field left behind
    expect(await a.locator('input, textarea').evaluateAll((els) => els.map((e) => (e as HTMLInputElement).value).filter((v) => v === 'x'))).toEqual([]);
  }, 90_000);

  test('the chat list: one tab stop, the open conversation marked, arrows move, Enter opens, Tab reaches the conversation', async () => {
    const nav = a.getByRole('navigation', { name: 'Conversations' });
    const list = nav.getByRole('list', { name: 'Conversations' });
    const rows = list.getByRole('button');
    await expect.poll(() => rows.count()).toBe(2);
    // Newest first: the group, open, is marked as the current one, and is the list's only tab stop.
    expect(await rows.nth(0).getAttribute('aria-current')).toBe('true');
    expect(await rows.nth(1).getAttribute('aria-current')).toBe('false');
    expect(await rows.evaluateAll((els) => els.map((e) => e.getAttribute('tabindex')))).toEqual(['0', '-1']);
    // From the search field, Tab passes New chat, New group and Settings, then lands on the list.
    await a.getByLabel('Search conversations').focus();
    for (let i = 0; i < 4; i++) await a.keyboard.press('Tab');
    await focusIsOn(rows.nth(0));
    await a.keyboard.press('ArrowDown');
    await focusIsOn(rows.nth(1));
    await a.keyboard.press('ArrowDown'); // the end: stays
    await focusIsOn(rows.nth(1));
    await a.keyboard.press('Home');
    await focusIsOn(rows.nth(0));
    await a.keyboard.press('End');
    await focusIsOn(rows.nth(1));
    await a.keyboard.press('Enter');
    await a.getByRole('heading', { name: bob }).waitFor();
    await expect.poll(() => list.locator('[aria-current="true"]').textContent()).toContain(bob);
    await focusIsOn(list.locator('[aria-current="true"]')); // on a wide screen focus stays in the list
    await a.keyboard.press('ArrowUp');
    await focusIsOn(rows.nth(0));
    await a.keyboard.press('Tab'); // one stop: straight on to the conversation
    await focusIsOn(a.getByRole('region', { name: `Conversation with ${bob}` }));
    await a.keyboard.press('Shift+Tab'); // back to the list: the row last on
    await focusIsOn(rows.nth(0));
  }, 60_000);

  test('on a phone: opening from the list focuses the composer; Back returns to the row', async () => {
    const row = c.getByRole('navigation', { name: 'Conversations' }).getByRole('button', { name: /Harbour crew/ });
    await row.waitFor({ timeout: 15_000 });
    await press(row);
    await c.getByRole('heading', { name: 'Harbour crew' }).waitFor();
    await focusIsOn(composer(c)); // the list made way: focus is not left on a hidden row
    await press(c.getByRole('button', { name: 'Back to conversations' }));
    await focusIsOn(c.getByRole('navigation', { name: 'Conversations' }).getByRole('button', { name: /Harbour crew/ }));
    await shot(c, 'kb-phone-list-focus');
    // A panel on a phone takes the whole width in place of the list, modal as on a wide screen.
    const settings = c.getByRole('button', { name: 'Settings' });
    await press(settings);
    const dialog = c.getByRole('dialog', { name: 'Settings' });
    await focusIsOn(dialog.getByRole('heading', { name: 'Settings' }));
    expect(await c.getByRole('navigation', { name: 'Conversations' }).isVisible()).toBe(false);
    expect((await dialog.boundingBox())!.width).toBe(390);
    await shot(c, 'kb-phone-settings-dialog');
    await c.keyboard.press('Shift+Tab');
    await focusIsOn(dialog.getByRole('button', { name: 'Log out of this device' }));
    await c.keyboard.press('Escape');
    await focusIsOn(settings);
  }, 60_000);

  test('a conversation opens at its newest message, stays put while reading older ones, and says what arrived', async () => {
    for (let i = 1; i <= 40; i++) {
      await composer(a).fill(`Line ${i} of the long story`);
      await a.keyboard.press('Enter');
    }
    await a.locator('.bubble .text', { hasText: 'Line 40 of' }).waitFor();
    const row = b.getByRole('navigation', { name: 'Conversations' }).getByRole('button', { name: new RegExp(alice) });
    await b.locator('.chat', { hasText: 'Line 40 of' }).waitFor({ timeout: 20_000 });
    await press(row);
    await b.locator('.bubble .text', { hasText: 'Line 40 of' }).waitFor();
    expect((await scroll(b)).max).toBeGreaterThan(0);
    await atNewest(b);
    const log = b.getByRole('log');
    expect(await log.getAttribute('aria-live')).toBe('polite');
    expect(await log.textContent()).toBe(''); // what was there already is not read out again

    // Reading older messages: a new one does not move the view, and is announced.
    await b.locator('.messages').evaluate((el) => el.scrollTo(0, 300));
    await b.waitForTimeout(300);
    await composer(b).focus();
    await composer(a).fill('Are you still there?');
    await a.keyboard.press('Enter');
    await b.locator('.bubble .text', { hasText: 'Are you still there?' }).waitFor({ timeout: 15_000 });
    await expect.poll(() => log.textContent()).toContain(`${alice}: Are you still there?`);
    expect((await scroll(b)).top).toBe(300);
    await focusIsOn(composer(b)); // nothing took focus
    const more = b.getByRole('button', { name: '1 new message' });
    await more.waitFor();
    await shot(b, 'kb-new-messages-button');
    await press(more);
    await atNewest(b);
    await focusIsOn(b.locator('.bubble', { hasText: 'Are you still there?' })); // the button went: focus on the newest message
    expect(await more.count()).toBe(0);

    // At the bottom, a new message scrolls into view by itself, with no button.
    await composer(a).fill('Good, one more thing');
    await a.keyboard.press('Enter');
    await b.locator('.bubble .text', { hasText: 'one more thing' }).waitFor({ timeout: 15_000 });
    await atNewest(b);
    expect(await b.locator('.new-below').count()).toBe(0);
    await expect.poll(() => log.textContent()).toContain(`${alice}: Good, one more thing`);

    // One's own message, sent while reading further up, is shown.
    await b.locator('.messages').evaluate((el) => el.scrollTo(0, 0));
    await b.waitForTimeout(300);
    await composer(b).fill('Yes, here');
    await composer(b).press('Enter');
    await b.locator('.bubble.mine .text', { hasText: 'Yes, here' }).waitFor();
    await atNewest(b);
    await focusIsOn(composer(b));
  }, 120_000);

  test('reply, the Send button and delete-for-everyone (after its dialog) keep focus where it makes sense', async () => {
    const messages = b.getByRole('list', { name: 'Messages' });
    await press(messages, 'ArrowUp'); // the newest message
    const mine = b.locator('.bubble.mine', { hasText: 'Yes, here' });
    await focusIsOn(mine);
    await b.keyboard.press('Tab'); // its first action
    await focusIsOn(mine.getByRole('button', { name: 'Reply' }));
    await b.keyboard.press('Enter');
    await focusIsOn(composer(b)); // replying: the words go in the composer
    await b.getByText(/^Replying to/).waitFor();
    await b.keyboard.press('Escape');
    expect(await b.getByText(/^Replying to/).count()).toBe(0);
    await focusIsOn(composer(b));

    await b.keyboard.type('Sent with the button');
    await press(b.getByRole('button', { name: 'Send' }));
    await b.locator('.bubble.mine .text', { hasText: 'Sent with the button' }).waitFor();
    await focusIsOn(b.locator('.composer'));

    const gone = b.locator('.bubble.mine', { hasText: 'Sent with the button' });
    await press(messages, 'ArrowUp');
    await focusIsOn(gone);
    b.once('dialog', (d) => void d.accept());
    await press(gone.getByRole('button', { name: 'Delete for everyone' }));
    await b.locator('.bubble.mine', { hasText: 'This message was deleted' }).last().waitFor({ timeout: 15_000 });
    // The Delete button is gone with the message's text: focus is on the message, not lost.
    await focusIsOn(b.locator('.bubble.mine').last());
    expect(await b.evaluate(() => document.activeElement === document.body)).toBe(false);
  }, 60_000);

  test('every control is named; focus rings show and are never removed by CSS', async () => {
    // The message actions (shown while a message has focus) and the emoji picker are named too.
    const theirs = b.locator('.bubble', { hasText: 'Good, one more thing' });
    await theirs.focus();
    await b.keyboard.press('Tab');
    await b.keyboard.press('Tab');
    await focusIsOn(theirs.getByRole('button', { name: 'React' }));
    await b.keyboard.press('Enter');
    await b.getByRole('group', { name: 'React with' }).waitFor();
    await press(b.getByRole('button', { name: 'Emoji' }));
    await b.getByRole('group', { name: 'Emoji' }).waitFor();
    expect(await unnamedControls(b)).toEqual([]);
    // Picking a reaction closes the picker: focus goes to the message, not to the page.
    await press(b.getByRole('button', { name: 'React with 👍' }));
    await focusIsOn(theirs);
    await theirs.locator('.reactions').waitFor({ timeout: 10_000 });
    expect(await theirs.ariaSnapshot()).toContain(`Reactions: ${bob} 👍`); // read out in words, the emoji once

    const rules = await b.evaluate(() => [...document.styleSheets].flatMap((s) => [...s.cssRules]).map((r) => r.cssText));
    expect(rules.filter((t) => /outline(-style)?:\s*(none|0)\b/.test(t))).toEqual([]);
    // Reached with Tab, each kind of control shows a ring at least 2px wide.
    await b.getByLabel('Search conversations').focus();
    const rings: string[] = [];
    for (let i = 0; i < 10; i++) {
      await b.keyboard.press('Tab');
      rings.push(await b.evaluate(() => {
        const el = document.activeElement as HTMLElement;
        const s = getComputedStyle(el);
        return `${el.tagName}.${el.className}: ${s.outlineStyle} ${s.outlineWidth}`;
      }));
    }
    expect(rings.filter((r) => /: none|: \S+ 0px|: \S+ 1px/.test(r))).toEqual([]);
    expect(rings.length).toBe(10);
  }, 60_000);

  test('the emoji pickers: focus goes in, arrows move, Escape closes and hands focus back, a click outside closes', async () => {
    const theirs = b.locator('.bubble', { hasText: 'Good, one more thing' });
    const react = theirs.getByRole('button', { name: 'React', exact: true });
    await theirs.focus();
    await b.keyboard.press('Tab');
    await b.keyboard.press('Tab');
    await focusIsOn(react);
    await b.keyboard.press('Enter');
    const reactions = b.getByRole('group', { name: 'React with' });
    await reactions.waitFor();
    expect(await react.getAttribute('aria-expanded')).toBe('true');
    expect(await react.getAttribute('aria-controls')).toBe(await reactions.getAttribute('id'));
    const emoji = (l: Locator, e: string) => l.getByRole('button', { name: new RegExp(`${e}$`) });
    await focusIsOn(reactions.locator('[aria-pressed="true"]')); // the reaction already chosen (👍, the test before)
    for (const [key, to] of [['ArrowRight', '❤️'], ['ArrowLeft', '👍'], ['ArrowLeft', '✅'], ['Home', '👍'], ['End', '✅'], ['ArrowDown', '👍']] as const) {
      await b.keyboard.press(key); // round at the ends; never on to another message (the list's own arrow keys)
      await focusIsOn(emoji(reactions, to));
    }
    await b.keyboard.press('Escape');
    await expect.poll(() => reactions.count()).toBe(0);
    await focusIsOn(react);
    expect(await react.getAttribute('aria-expanded')).toBe('false');

    // The composer's picker, still open from the test before, and the message's, opened again:
    // one click elsewhere closes both.
    const insert = b.getByRole('group', { name: 'Emoji' });
    expect(await insert.count()).toBe(1);
    await b.keyboard.press('Enter');
    await reactions.waitFor();
    await b.locator('.conv-head h2').click();
    await expect.poll(async () => (await reactions.count()) + (await insert.count())).toBe(0);

    const button = b.getByRole('button', { name: 'Emoji' });
    await press(button);
    await focusIsOn(emoji(insert, '👍'));
    await b.keyboard.press('ArrowRight');
    await b.keyboard.press('Enter');
    await focusIsOn(composer(b)); // picked: back to the words, the picker gone
    expect(await composer(b).inputValue()).toBe('❤️');
    expect(await insert.count()).toBe(0);
    await press(button);
    await focusIsOn(emoji(insert, '👍'));
    await b.keyboard.press('Escape');
    await expect.poll(() => insert.count()).toBe(0);
    await focusIsOn(button);
    await composer(b).fill('');
  }, 60_000);

  test('toasts are announced (alert, status) and do not steal focus; Dismiss hands focus back', async () => {
    expect(await b.locator('.toasts [role="status"]').count()).toBe(1); // there before anything is said
    expect(await b.locator('.toasts [role="alert"]').count()).toBe(1);
    await press(b.getByRole('button', { name: 'New chat', exact: true }));
    const field = b.getByRole('dialog', { name: 'New chat' }).getByLabel('Username');
    await focusIsOn(field);
    await b.keyboard.type(uniqueName('nobody'));
    await b.keyboard.press('Enter');
    const alert = b.getByRole('alert').filter({ hasText: /\S/ });
    await alert.waitFor({ timeout: 10_000 });
    await focusIsOn(field); // still typing where they were
    await press(alert.getByRole('button', { name: 'Dismiss message' }));
    await expect.poll(() => alert.count()).toBe(0);
    await focusIsOn(field);
    // Dismissed with the mouse: the toasts are no part of the page behind, so the panel stays open.
    await b.keyboard.press('Enter'); // the same unknown name again
    await alert.waitFor({ timeout: 10_000 });
    await alert.getByRole('button', { name: 'Dismiss message' }).click();
    await expect.poll(() => alert.count()).toBe(0);
    expect(await b.getByRole('dialog', { name: 'New chat' }).count()).toBe(1);
    await focusIsOn(field);
    await b.keyboard.press('Escape');
    await focusIsOn(b.getByRole('button', { name: 'New chat', exact: true }));
  }, 60_000);

  test('removing a group member (after its dialog) leaves focus in the panel, not on the page', async () => {
    await press(a.getByRole('navigation', { name: 'Conversations' }).getByRole('button', { name: /Harbour crew/ }));
    await a.getByRole('heading', { name: 'Harbour crew' }).waitFor();
    await press(a.getByRole('button', { name: 'Group info' }));
    const panel = a.getByRole('dialog', { name: 'Group info' });
    a.once('dialog', (d) => void d.accept());
    await press(panel.getByRole('button', { name: `Remove ${carol}` }));
    await expect.poll(() => panel.getByRole('button', { name: `Remove ${carol}` }).count(), { timeout: 15_000 }).toBe(0);
    await focusIsOn(panel.getByRole('heading', { name: 'Group info' }));
    await a.keyboard.press('Escape');
    await focusIsOn(a.getByRole('button', { name: 'Group info' }));
    expect(lab.problems.filter((p) => !/net::ERR|Failed to load resource|404/.test(p))).toEqual([]);
  }, 60_000);
});
