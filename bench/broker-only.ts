/**
 * The comparison broker of the ingestSingle scenario: Aedes with the same listener setup as the gateway,
 * accepting every device and storing nothing. Prints "started <port>".
 */
import { createServer } from 'node:net';
import { Aedes } from 'aedes';

const broker = await Aedes.createBroker({
  authenticate: (_client, _username, _password, callback) => callback(null, true),
  authorizePublish: (_client, packet, callback) => {
    packet.retain = false;
    callback(null);
  },
});
const server = createServer((socket) => {
  socket.setNoDelay(true);
  broker.handle(socket);
});
server.listen(Number(process.env.MQTT_PORT ?? 0), '127.0.0.1', () => {
  console.log(`started ${(server.address() as { port: number }).port}`);
});
process.on('SIGTERM', () => {
  server.close();
  broker.close(() => process.exit(0));
});
