/**
 * The verified mark: a shield with a check and the word, never the icon alone (colour and shape
 * are not enough for everyone). It says the user compared safety numbers for the person's current
 * account key; a key change clears it (web/core/directory.ts), so its absence is meaningful too.
 */
export function VerifiedMark({ user, compact = false }: { user: string; compact?: boolean }) {
  const why = `You compared safety numbers with ${user}`;
  return (
    <span class={`verified-mark${compact ? ' compact' : ''}`} title={why}>
      <svg class="icon" viewBox="0 0 16 16" aria-hidden="true" focusable="false">
        <path d="M8 .8 1.8 3.1v4.3c0 3.6 2.6 6.8 6.2 7.8 3.6-1 6.2-4.2 6.2-7.8V3.1L8 .8Zm-1.1 10.6L3.8 8.3l1.2-1.2 1.9 1.9 4.2-4.2 1.2 1.2-5.4 5.4Z" />
      </svg>
      {/* In a list row the word is for screen readers only; where there is room it is shown. */}
      <span class={compact ? 'visually-hidden' : undefined}>{compact ? ', verified' : 'Verified'}</span>
    </span>
  );
}
