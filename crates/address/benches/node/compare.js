// Throughput of the npm `multicoin-address-validator` over the EVM, Solana, Bitcoin and Tron
// rows of tests/vectors/address_public.json: the same inputs as the criterion `multicoin`
// group of benches/validate.rs. Prints nanoseconds per validation and agreement with the
// expected verdicts.
//
//   cd crates/address/benches/node && npm install && node compare.js
'use strict';

const fs = require('fs');
const path = require('path');
const WAValidator = require('multicoin-address-validator');

const rows = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', '..', 'tests', 'vectors', 'address_public.json'), 'utf8'),
);

// Family name -> [currency, networkType]; Bitcoin testnet rows are valid in the vectors.
const currencies = {
  evm: ['ETH', 'prod'],
  solana: ['SOL', 'prod'],
  bitcoin: ['BTC', 'both'],
  tron: ['TRX', 'prod'],
};

function validate(input, currency, network) {
  try {
    return WAValidator.validate(input, currency, network) === true;
  } catch (_) {
    return false;
  }
}

const minMillis = Number(process.env.BENCH_MILLIS || 2000);
const results = {};
for (const [family, [currency, network]] of Object.entries(currencies)) {
  const inputs = rows.filter((r) => r.chain === family);
  const agree = inputs.filter((r) => validate(r.input, currency, network) === r.valid).length;
  // Warm up the JIT, then run whole passes until the time budget is spent.
  for (let i = 0; i < 200; i++) for (const r of inputs) validate(r.input, currency, network);
  let passes = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0n;
  while (elapsed < BigInt(minMillis) * 1000000n) {
    for (const r of inputs) validate(r.input, currency, network);
    passes++;
    elapsed = process.hrtime.bigint() - start;
  }
  const perValidation = Number(elapsed) / (passes * inputs.length);
  results[family] = {
    inputs: inputs.length,
    agreeing_with_vectors: agree,
    ns_per_validation: Math.round(perValidation),
    validations_per_second: Math.round(1e9 / perValidation),
  };
}
console.log(JSON.stringify({ node: process.version, results }, null, 2));
