import { loadSettings } from './config.ts';
import { buildApp } from './app.ts';

/** `npm start`: settings from the environment, listen, and close cleanly on SIGINT/SIGTERM. */
const settings = loadSettings();
const app = await buildApp(settings, { logger: true }).catch((err: unknown) => {
  // e.g. another studio holds the workspace: say which, without a stack trace
  console.error(`AI Studio cannot start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});

let closing = false;
async function shutdown(signal: string): Promise<void> {
  if (closing) return;
  closing = true;
  app.log.info(`${signal} received, closing`);
  // A second signal while jobs drain means "now".
  const force = setTimeout(() => process.exit(1), 10_000);
  force.unref();
  try {
    await app.close();
    process.exit(0);
  } catch (err) {
    app.log.error(err);
    process.exit(1);
  }
}
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));

try {
  await app.listen({ host: settings.host, port: settings.port });
  const shown = settings.host === '0.0.0.0' || settings.host === '::' ? 'localhost' : settings.host;
  const url = `http://${shown.includes(':') ? `[${shown}]` : shown}:${settings.port}`;
  app.log.info(`AI Studio at ${url} (workspace ${settings.workspace})`);
  if (settings.token) app.log.info(`token auth on: open ${url}/login?token=… once in the browser`);
  const loopback = ['127.0.0.1', '::1', 'localhost'].includes(settings.host) || settings.host.startsWith('127.');
  if (!loopback && !settings.token) {
    // Anyone who can reach this address can read the datasets and start jobs: say so loudly.
    app.log.warn(`HOST=${settings.host} is reachable from the network and STUDIO_TOKEN is not set: anyone who can reach ${url} can read and change every project. Set STUDIO_TOKEN before exposing the studio.`);
  }
} catch (err) {
  app.log.error(err);
  process.exit(1);
}
