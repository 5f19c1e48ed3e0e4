/** An error a client caused; the route handler throws it and the client gets a 4xx JSON error. */
export class HttpError extends Error {
  constructor(readonly statusCode: number, readonly code: string, message: string) {
    super(message);
    this.name = 'HttpError';
  }
}
