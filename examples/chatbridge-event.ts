/**
 * A chatbridge event as a webhook body and the live stream carry it: a structured CloudEvent (docs/events.md). `data`
 * depends on `type` (docs/schemas/<type>.json).
 */
export interface ChatbridgeJsonEvent {
  specversion: string;
  id: string;
  source: string;
  type: string;
  time: string;
  subject?: string;
  dataschema?: string;
  partitionkey: string;
  channelid?: string;
  provider?: string;
  data: unknown;
}
