CREATE TABLE "relay_instances" (
	"instance" text PRIMARY KEY NOT NULL,
	"seen_at" bigint NOT NULL
);
