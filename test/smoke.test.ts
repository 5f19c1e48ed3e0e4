import * as bitcoin from 'bitcoinjs-lib';
import { Level } from 'level';
import * as zmq from 'zeromq';
import BN from 'bn.js';
import * as ecc from '@bitcoinerlab/secp256k1';
import { ECPairFactory } from 'ecpair';
import fc from 'fast-check';
test('toolchain', () => {
  bitcoin.initEccLib(ecc);
  const k = ECPairFactory(ecc).makeRandom();
  expect(k.publicKey.length).toBe(33);
  expect(typeof Level).toBe('function');
  expect(typeof zmq.Subscriber).toBe('function');
  expect(new BN(5).toString()).toBe('5');
  fc.assert(fc.property(fc.integer(), (n) => n === n));
});
