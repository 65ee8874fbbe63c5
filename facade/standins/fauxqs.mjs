// SQS stand-in of the local stack: fauxqs (npm), bound to one loopback address.
// Usage: node fauxqs.mjs HOST PORT   — prints "fauxqs listening at http://HOST:PORT".
import { buildApp } from "fauxqs";

const [host = "127.0.0.1", port = "4568"] = process.argv.slice(2);
const app = buildApp({ logger: false, host: "localhost" });  // queue URLs: sqs.REGION.localhost:PORT
const address = await app.listen({ host, port: Number(port) });
console.log(`fauxqs listening at ${address}`);
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => app.close().then(() => process.exit(0)));
}
