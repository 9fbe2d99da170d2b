import './warm-up.js';
import { startLatchkey } from './app.js';
import { readConfig } from './config.js';
import { loggerOptions } from './http/server.js';

try {
  // A bad environment is a start-up error like any other: one message naming every bad variable.
  const config = readConfig();
  const running = await startLatchkey(config, loggerOptions(config.logLevel));
  console.log(running.databaseMode);
  console.log(`Latchkey listening on ${running.url}`);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await running.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
} catch (error) {
  console.error(`Latchkey could not start: ${(error as Error).message}`);
  process.exit(1);
}
