/**
 * Jest globalSetup: one shared mock Kafka cluster (3 brokers) per test run.
 * Its bootstrap list goes into CHATBRIDGE_TEST_KAFKA (comma-separated), which
 * the test workers inherit. Tests that take brokers down must start their own
 * broker with startTestBroker() instead of disturbing this one.
 */
import { startTestBroker, TestBroker } from './test-broker';

declare global {
  var __CHATBRIDGE_TEST_BROKER__: TestBroker | undefined;
}

export default async function globalSetup(): Promise<void> {
  if (globalThis.__CHATBRIDGE_TEST_BROKER__) return; // watch mode re-runs
  // Which Node runs the tests: the workers and the bridge processes the tests start use this same binary
  // (process.execPath), so a run meant for Node 24 (.ci/run) shows it here.
  console.log(`\ntests on Node ${process.version} (${process.execPath})`);
  const broker = await startTestBroker({ brokers: 3 });
  globalThis.__CHATBRIDGE_TEST_BROKER__ = broker;
  process.env.CHATBRIDGE_TEST_KAFKA = broker.bootstrap.join(',');
}
