/**
 * Limits and timings, each with its reason. Every one can be overridden through createApp's
 * deps (tests shrink them); server.ts maps the documented environment variables onto them.
 */
export interface RelayConfig {
  /** Default JSON body limit: accounts, device lists, tokens, acks are all small. */
  readonly maxBodyBytes: number;
  /** Message submission body: payload + envelopes, base64url-encoded (4/3 of the bytes). */
  readonly maxMessageBodyBytes: number;
  /** Prekey upload body: 100 X-Wing prekeys are ~130 KB of bytes, ~170 KB encoded. */
  readonly maxPrekeyBodyBytes: number;
  /** One shared ciphertext payload. Attachments travel separately, so messages are small. */
  readonly maxPayloadBytes: number;
  /** One per-device envelope: a prekey message is ~1.4 KB plus its ratchet message. */
  readonly maxEnvelopeBytes: number;
  readonly maxEnvelopesPerMessage: number;
  readonly maxRecipientsPerMessage: number;
  /** Stored one-time prekeys per device and kind: bounds storage a device can take. */
  readonly maxOneTimePrekeys: number;
  readonly maxPrekeysPerUpload: number;
  /** The encrypted account-key backup blob. */
  readonly maxBackupBytes: number;
  /** How long an OPAQUE login proof (account session token) lets its holder manage the account. */
  readonly sessionTtlMs: number;
  /** Time allowed between OPAQUE login start and finish. */
  readonly loginStateTtlMs: number;
  /** Unacknowledged envelopes older than this are deleted by the sweeper. */
  readonly inboxRetentionMs: number;
  /** How long a (sender device, client message id) is remembered for idempotent retries. */
  readonly idempotencyRetentionMs: number;
  readonly inboxPageMax: number;
  /**
   * Envelope and payload bytes in one inbox page or WebSocket frame (one envelope at least):
   * bounds what one read holds in memory and the size of a frame a client must accept.
   */
  readonly inboxPageMaxBytes: number;
  /** Per-socket send buffer; past it the socket is closed and the device resyncs by seq. */
  readonly wsMaxBufferedBytes: number;
  /** Time a new socket has to send its auth message. */
  readonly wsAuthTimeoutMs: number;
  /** Submissions grouped into one transaction, and batches outstanding at once on the writer's connection (pipelined). */
  readonly writerMaxBatch: number;
  readonly writerConcurrency: number;
  /** Longest a batch waits for submissions likely on their way (see InboxWriter.pump); 0 never waits. */
  readonly writerLingerMs: number;
  /**
   * Acknowledgements wait this long to be applied together: an ack only lets the relay delete
   * what the device has stored, so none is urgent, and one statement per window costs the
   * database far less than one per ack (acks arrive as often as messages do).
   */
  readonly ackLingerMs: number;
  /** Largest attachment (ciphertext bytes) and each account's total of unexpired ones. */
  readonly maxAttachmentBytes: number;
  readonly attachmentQuotaBytes: number;
  /** Upload chunk: small enough to hold in memory per request, large enough to keep requests few. */
  readonly attachmentChunkBytes: number;
  /** Complete attachments are kept this long (recipients offline for weeks still get them). */
  readonly attachmentRetentionMs: number;
  /** An upload not completed within this is swept with its chunks. */
  readonly attachmentUploadTtlMs: number;
  /** A device without a socket here is pushed only if its envelopes are still unacknowledged this long after commit. */
  readonly pushGraceMs: number;
  /** At most one push per device in this window: a burst of messages wakes a device once. */
  readonly pushCoalesceMs: number;
  /** How long the push service keeps trying an offline browser. */
  readonly pushTtlSeconds: number;
  readonly pushTimeoutMs: number;
  /** The VAPID `sub` claim: how push services reach the operator. */
  readonly vapidSubject: string;
  /** Allow http:// push endpoints (a local push service in tests); https only otherwise. */
  readonly pushAllowInsecureEndpoints: boolean;
  /** If set, GET /metrics requires `Authorization: Bearer <metricsToken>`. */
  readonly metricsToken: string | null;
  readonly rateLimits: RateLimits;
}

/** Token buckets: `burst` tokens, refilled at `perMinute`. */
export interface Bucket {
  readonly burst: number;
  readonly perMinute: number;
}

export interface RateLimits {
  readonly registerPerIp: Bucket;
  /** Registration starts per (normalised) username: bounds probing one name for availability. */
  readonly registerPerUser: Bucket;
  readonly loginPerIp: Bucket;
  readonly loginPerUser: Bucket;
  /** Bundle fetches per requesting device: each one can consume a one-time prekey per target device. */
  readonly bundlesPerDevice: Bucket;
  /** Bundle fetches per (requesting account, target user). */
  readonly bundlesPerTarget: Bucket;
}

export const DEFAULT_CONFIG: RelayConfig = {
  maxBodyBytes: 64 * 1024,
  maxMessageBodyBytes: 2 * 1024 * 1024,
  maxPrekeyBodyBytes: 1024 * 1024,
  maxPayloadBytes: 256 * 1024,
  maxEnvelopeBytes: 8 * 1024,
  maxEnvelopesPerMessage: 1000,
  maxRecipientsPerMessage: 100,
  maxOneTimePrekeys: 500,
  maxPrekeysPerUpload: 200,
  maxBackupBytes: 16 * 1024,
  sessionTtlMs: 10 * 60_000,
  loginStateTtlMs: 60_000,
  inboxRetentionMs: 30 * 24 * 3600_000,
  idempotencyRetentionMs: 7 * 24 * 3600_000,
  inboxPageMax: 500,
  inboxPageMaxBytes: 1024 * 1024,
  wsMaxBufferedBytes: 4 * 1024 * 1024,
  wsAuthTimeoutMs: 10_000,
  writerMaxBatch: 256,
  writerConcurrency: 2,
  writerLingerMs: 2,
  ackLingerMs: 20,
  maxAttachmentBytes: 100 * 1024 * 1024,
  attachmentQuotaBytes: 1024 * 1024 * 1024,
  attachmentChunkBytes: 1024 * 1024,
  attachmentRetentionMs: 30 * 24 * 3600_000,
  attachmentUploadTtlMs: 24 * 3600_000,
  pushGraceMs: 1000,
  pushCoalesceMs: 10_000,
  pushTtlSeconds: 24 * 3600,
  pushTimeoutMs: 10_000,
  vapidSubject: 'mailto:operator@localhost',
  pushAllowInsecureEndpoints: false,
  metricsToken: null,
  rateLimits: {
    registerPerIp: { burst: 10, perMinute: 10 },
    registerPerUser: { burst: 5, perMinute: 5 },
    loginPerIp: { burst: 30, perMinute: 30 },
    loginPerUser: { burst: 10, perMinute: 10 },
    bundlesPerDevice: { burst: 120, perMinute: 120 },
    bundlesPerTarget: { burst: 30, perMinute: 30 },
  },
};

export function resolveConfig(overrides: Partial<RelayConfig> = {}): RelayConfig {
  return { ...DEFAULT_CONFIG, ...overrides, rateLimits: { ...DEFAULT_CONFIG.rateLimits, ...overrides.rateLimits } };
}
