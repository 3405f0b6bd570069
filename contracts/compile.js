// Compiles src/HavenToken.sol with the pinned solcjs and writes artifacts/HavenToken.json
// (ABI + creation bytecode). Output is deterministic: no metadata hash, sorted keys.
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const EXPECTED_SOLC = "0.8.24";
if (!solc.version().startsWith(EXPECTED_SOLC + "+")) {
  console.error(`solc ${solc.version()} found, ${EXPECTED_SOLC} expected`);
  process.exit(1);
}

const source = fs.readFileSync(path.join(__dirname, "src", "HavenToken.sol"), "utf8");
const input = {
  language: "Solidity",
  sources: { "HavenToken.sol": { content: source } },
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "paris",
    metadata: { bytecodeHash: "none", appendCBOR: false },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};

function findImports(importPath) {
  try {
    const resolved = require.resolve(importPath, { paths: [__dirname] });
    return { contents: fs.readFileSync(resolved, "utf8") };
  } catch (e) {
    return { error: `not found: ${importPath}` };
  }
}

const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
if (errors.length > 0) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
const contract = output.contracts["HavenToken.sol"]["HavenToken"];
const artifact = {
  contractName: "HavenToken",
  compiler: solc.version(),
  openzeppelin: require("@openzeppelin/contracts/package.json").version,
  abi: contract.abi,
  bytecode: "0x" + contract.evm.bytecode.object,
};
fs.mkdirSync(path.join(__dirname, "artifacts"), { recursive: true });
fs.writeFileSync(
  path.join(__dirname, "artifacts", "HavenToken.json"),
  JSON.stringify(artifact, null, 2) + "\n",
);
console.log(`wrote artifacts/HavenToken.json (${contract.evm.bytecode.object.length / 2} bytes)`);
