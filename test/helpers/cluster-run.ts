import { startTestBroker, type TestBroker } from '../kafka/test-broker';
import { BridgeProcess, startReplicas } from './bridge-process';
import { KafkaReader } from './kafka-reader';

/**
 * Three bridge processes (`a`, `b`, `c`) sharing channels through their own test broker: a 6-partition commands
 * topic (so ownership can spread) and a reader of the events topic. `config` builds the bridges' config once the
 * broker's address is known; `stop` kills whatever is still running.
 */
export class ClusterRun {
  broker!: TestBroker;
  reader!: KafkaReader;
  readonly replicas: BridgeProcess[] = [];

  async start(topics: { events: string; commands: string }, config: (brokers: string[]) => Promise<Record<string, unknown>> | Record<string, unknown>): Promise<void> {
    this.broker = await startTestBroker({ brokers: 1, topics: [{ name: topics.commands, partitions: 6 }, { name: topics.events, partitions: 4 }] });
    const cfg = await config(this.broker.bootstrap);
    this.reader = new KafkaReader(this.broker.bootstrap, [topics.events]);
    await Promise.all([startReplicas(this.replicas, ['a', 'b', 'c'], cfg), this.reader.start()]);
  }

  async stop(): Promise<void> {
    await Promise.all(this.replicas.map((r) => r.kill()));
    // The broker stops even when the reader's stop throws (events that miss their schema): its process would
    // otherwise outlive the test file and keep the Jest worker from exiting.
    try {
      await this.reader?.stop();
    } finally {
      await this.broker?.stop();
    }
  }
}
