import { ConnectionError, redactText } from '@vmplane/common';
import type WebSocket from 'ws';
import { BACKEND } from '../errors.js';

/** A frame the socket took but could not send: it may have left, so `sent` is true. */
export function frameSendError(label: string, error: Error): ConnectionError {
  return new ConnectionError({ message: `${label}: ${redactText(error.message)}`, backend: BACKEND, sent: true });
}

/**
 * Sends one frame on a session's websocket (exec control, console data or control). A closed
 * session or a socket that is not open refuses before anything leaves.
 */
export function sendFrame(
  label: string,
  sessionClosed: boolean,
  ws: WebSocket | undefined,
  payload: Buffer | string,
  binary: boolean,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (sessionClosed || !ws || ws.readyState !== ws.OPEN) {
      reject(
        new ConnectionError({
          message: `${label}: the session is closed; nothing was sent`,
          backend: BACKEND,
          sent: false,
        }),
      );
      return;
    }
    ws.send(payload, { binary }, (error) => (error ? reject(frameSendError(label, error)) : resolve()));
  });
}
