CREATE SEQUENCE "public"."message_ids" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1;--> statement-breakpoint
CREATE TABLE "account_sessions" (
	"token_hash" "bytea" PRIMARY KEY NOT NULL,
	"account_id" bigint NOT NULL,
	"expires_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "accounts" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "accounts_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"username" text NOT NULL,
	"opaque_record" text NOT NULL,
	"account_key" "bytea",
	"backup" "bytea",
	"created_at" bigint NOT NULL,
	CONSTRAINT "accounts_username_unique" UNIQUE("username")
);
--> statement-breakpoint
CREATE TABLE "device_lists" (
	"account_id" bigint PRIMARY KEY NOT NULL,
	"version" bigint NOT NULL,
	"bytes" "bytea" NOT NULL,
	"updated_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "devices" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "devices_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"account_id" bigint NOT NULL,
	"device_id" "bytea" NOT NULL,
	"signing_key" "bytea" NOT NULL,
	"dh_key" "bytea" NOT NULL,
	"active" boolean NOT NULL,
	"token_hash" "bytea",
	"next_seq" bigint DEFAULT 0 NOT NULL,
	"created_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "inbox" (
	"device" bigint NOT NULL,
	"seq" bigint NOT NULL,
	"payload" bigint NOT NULL,
	"sender_user" text NOT NULL,
	"sender_device" "bytea" NOT NULL,
	"envelope" "bytea" NOT NULL,
	"created_at" bigint NOT NULL,
	CONSTRAINT "inbox_device_seq_pk" PRIMARY KEY("device","seq")
);
--> statement-breakpoint
CREATE TABLE "opaque_logins" (
	"id" text PRIMARY KEY NOT NULL,
	"account_id" bigint,
	"state" text NOT NULL,
	"expires_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "payloads" (
	"id" bigint PRIMARY KEY NOT NULL,
	"data" "bytea" NOT NULL,
	"created_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "prekeys" (
	"device" bigint NOT NULL,
	"kind" smallint NOT NULL,
	"key_id" bigint NOT NULL,
	"data" "bytea" NOT NULL,
	CONSTRAINT "prekeys_device_kind_key_id_pk" PRIMARY KEY("device","kind","key_id")
);
--> statement-breakpoint
CREATE TABLE "relay_secrets" (
	"name" text PRIMARY KEY NOT NULL,
	"value" text NOT NULL,
	"created_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "submissions" (
	"sender_device" bigint NOT NULL,
	"client_id" text NOT NULL,
	"message_id" bigint NOT NULL,
	"created_at" bigint NOT NULL,
	CONSTRAINT "submissions_sender_device_client_id_pk" PRIMARY KEY("sender_device","client_id")
);
--> statement-breakpoint
ALTER TABLE "account_sessions" ADD CONSTRAINT "account_sessions_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "device_lists" ADD CONSTRAINT "device_lists_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "devices" ADD CONSTRAINT "devices_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "prekeys" ADD CONSTRAINT "prekeys_device_devices_id_fk" FOREIGN KEY ("device") REFERENCES "public"."devices"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "devices_account_device" ON "devices" USING btree ("account_id","device_id");--> statement-breakpoint
CREATE UNIQUE INDEX "devices_token_hash" ON "devices" USING btree ("token_hash");--> statement-breakpoint
CREATE INDEX "inbox_payload" ON "inbox" USING btree ("payload");--> statement-breakpoint
CREATE INDEX "inbox_created" ON "inbox" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "submissions_created" ON "submissions" USING btree ("created_at");