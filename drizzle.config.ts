import { defineConfig } from 'drizzle-kit';

// `npx drizzle-kit generate` writes a new migration into relay/db/migrations from the schema.
// Migrations are append-only: never edit one that has been committed.
export default defineConfig({
  dialect: 'postgresql',
  schema: './relay/db/schema.ts',
  out: './relay/db/migrations',
});
