import { RpcError } from '../../indexer/node/rpc.js';

/** The RpcError `p` rejects with; anything else it throws is rethrown, and a resolved `p` is a failure. */
export async function rejection(p: Promise<unknown>): Promise<RpcError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof RpcError) return err;
    throw err;
  }
  throw new Error('expected the call to fail');
}
