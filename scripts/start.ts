// npm start: builds the PWA into web/dist when it is missing or older than its sources, then
// runs the relay (relay/server.ts, the only file that binds a port), which serves it.
// PETREL_WEB_ROOT set means the operator serves a build of their own: leave web/dist alone.
import { buildWeb, webBuildIsStale } from './build-web.ts';

if (!process.env.PETREL_WEB_ROOT && webBuildIsStale()) {
  console.log(JSON.stringify({ t: new Date().toISOString(), level: 'info', msg: 'building the PWA into web/dist' }));
  await buildWeb();
}
const { runMain } = await import('../relay/server.ts');
runMain();
