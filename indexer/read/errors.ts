/** A question the index cannot answer as asked (a height it does not hold, a malformed cursor): the asker's to fix. */
export class QueryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QueryError';
  }
}
