#!/usr/bin/env node
// The `petrel` command: runs the TypeScript headless client (web/headless/cli.ts) through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../web/headless/cli.ts');
