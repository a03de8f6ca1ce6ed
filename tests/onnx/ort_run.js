// ort_run.js MODEL INPUT N,C,H,W OUTPUT - runs an ONNX model in onnxruntime (the CPU build of
// onnxruntime-node) on a raw little-endian float32 file of the given shape, and writes its first
// output the same way.  The input is fed to the model's first input, whatever its name.
// tests/onnx/run.sh installs onnxruntime-node into a cache folder and sets NODE_PATH.
const fs = require('fs');
const ort = require('onnxruntime-node');

const [,, modelPath, inputPath, shapeText, outputPath] = process.argv;
if (!outputPath) {
  console.error('usage: node ort_run.js MODEL INPUT N,C,H,W OUTPUT');
  process.exit(2);
}

(async () => {
  const shape = shapeText.split(',').map(Number);
  const bytes = fs.readFileSync(inputPath);
  const count = shape.reduce((a, b) => a * b, 1);
  if (bytes.length !== 4 * count)
    throw new Error(`${inputPath}: ${bytes.length} bytes, not ${4 * count} for shape ${shapeText}`);
  // A copy: the Buffer's memory need not be aligned for a Float32Array.
  const data = new Float32Array(count);
  Buffer.from(data.buffer).set(bytes);
  const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const results = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', data, shape) });
  const output = results[session.outputNames[0]];
  if (output.type !== 'float32')
    throw new Error(`${modelPath}: output of type ${output.type}`);
  fs.writeFileSync(outputPath, Buffer.from(output.data.buffer, output.data.byteOffset, output.data.byteLength));
})().catch(e => {
  console.error(`ort_run: ${modelPath}: ${e.message}`);
  process.exit(1);
});
