// Cloud Monitoring incidents about a VM: kept on its host document while open (hosts/{id}.openIncidents)
// and forwarded as host.performance alerts (pure).

/** One open incident as the host document lists it. */
export interface OpenIncident {
  incidentId: string;
  policy: string | null;
  condition: string | null;
  metric: string | null;
  observed: string | null;
  threshold: string | null;
  startedAt: Date | null;
  url: string | null;
}

/** The host.performance episode of an incident (an incident without a VM is keyed `none`). */
export const incidentKey = (instanceId: string | null, incidentId: string) =>
  `host.performance:${instanceId ?? 'none'}:${incidentId}`;

/** Pure: the list with `incident` in it (once, however often it is opened). */
export const withIncident = (list: OpenIncident[], incident: OpenIncident): OpenIncident[] =>
  list.some((i) => i.incidentId === incident.incidentId) ? list : [...list, incident];

/** Pure: the list without the incident `incidentId`. */
export const withoutIncident = (list: OpenIncident[], incidentId: string): OpenIncident[] =>
  list.filter((i) => i.incidentId !== incidentId);
