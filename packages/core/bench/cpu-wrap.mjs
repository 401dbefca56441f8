// Runs a benchmark server script (argv[2]) in this process and answers 'cpu' messages with this
// process's CPU time, so a benchmark can charge CPU per operation to the server alone: on a shared
// machine that is steadier than throughput.
process.on('message', (m) => {
  if (m === 'cpu') process.send({ cpu: process.cpuUsage() });
});
await import(process.argv[2]);
