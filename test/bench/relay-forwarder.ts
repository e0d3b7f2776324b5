// Baseline for bench:relay: a bare `ws` forwarder with the relay's framing and no storage.
// A client authenticates with { type: "auth", token } (the token is just its name here);
// { type: "submit", ref, to, payload, envelopes } is forwarded to the named receivers as an
// "envelopes" frame and answered with "submitted". Prints {"port":N} when listening.
import { WebSocketServer, type WebSocket } from 'ws';

const sockets = new Map<string, WebSocket>();
let messageId = 0;
const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
wss.on('connection', (ws) => {
  let name = '';
  ws.on('message', (data) => {
    const f = JSON.parse(String(data));
    if (f.type === 'auth') {
      name = f.token;
      sockets.set(name, ws);
      ws.send(JSON.stringify({ type: 'ready', after: 0 }));
    } else if (f.type === 'submit') {
      const id = ++messageId;
      const ts = Date.now();
      for (const e of f.envelopes) {
        sockets.get(e.user)?.send(JSON.stringify({ type: 'envelopes', items: [{ seq: id, messageId: id, sender: { user: name, device: '' }, timestamp: ts, envelope: e.body, payload: f.payload }] }));
      }
      ws.send(JSON.stringify({ type: 'submitted', ref: f.ref, messageId: id, timestamp: ts }));
    }
  });
  ws.on('close', () => sockets.get(name) === ws && sockets.delete(name));
});
wss.on('listening', () => console.log(JSON.stringify({ port: (wss.address() as { port: number }).port })));
