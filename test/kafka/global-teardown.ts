/** Jest globalTeardown: stop the shared mock Kafka cluster from global-setup.ts. */
import type { TestBroker } from './test-broker';

declare global {
  var __CHATBRIDGE_TEST_BROKER__: TestBroker | undefined;
}

export default async function globalTeardown(): Promise<void> {
  const broker = globalThis.__CHATBRIDGE_TEST_BROKER__;
  globalThis.__CHATBRIDGE_TEST_BROKER__ = undefined;
  delete process.env.CHATBRIDGE_TEST_KAFKA;
  if (broker) await broker.stop();
}
