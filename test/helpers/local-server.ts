/** An HTTP server of a test (a proxy in front of a registry) on 127.0.0.1: listening, and stopped with every connection closed. */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

export async function listenLocal(server: Server): Promise<{ host: string; stop: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  let stopping: Promise<void> | undefined;
  return {
    host: `127.0.0.1:${port}`,
    stop: () =>
      (stopping ??= new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      })),
  };
}
