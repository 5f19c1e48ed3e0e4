// Preloaded into a bcoin process (node --require) to raise regtest's relay
// floor: bcoin has no flag for it, but its mempool and getnetworkinfo both
// read the network object, which this edits before the node is built.
'use strict';
const network = require('bcoin/lib/protocol/network').get('regtest');
network.minRelay = Number(process.env.NODEREG_TEST_MIN_RELAY);
