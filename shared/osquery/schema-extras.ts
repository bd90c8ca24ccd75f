// What the published schema JSON leaves out: table and column aliases osquery accepts, and tables that
// older packs still read but osquery has removed.

/**
 * Table aliases, from `table_name(..., aliases=[...])` in osquery 5.23.1's specs/. osquery creates each
 * as `CREATE VIEW alias AS SELECT * FROM table` (osquery/sql/virtual_table.cpp), so only the table's
 * visible columns show through.
 */
export const TABLE_ALIASES: Record<string, string> = {
  alf_services: 'sharing_preferences',
  cb_info: 'carbon_black_info',
  configurations: 'augeas',
  hosts: 'etc_hosts',
  hvci_status: 'deviceguard_status',
  packages: 'package_receipts',
  programs_and_features: 'programs',
  syslog: 'syslog_events',
  yara: 'yara_file',
};

/** Column aliases, `Column(..., aliases=[...])` in 5.23.1's specs/: extra hidden columns on the table. */
export const COLUMN_ALIASES: Record<string, Record<string, string>> = {
  chrome_extensions: { locale: 'default_locale' },
  disk_events: { bsd_name: 'device' },
  osquery_schedule: { blacklisted: 'denylisted' },
  process_events: {
    environment: 'env',
    environment_count: 'env_count',
    environment_size: 'env_size',
    access_time: 'atime',
    modify_time: 'mtime',
    change_time: 'ctime',
    create_time: 'btime',
  },
  time: { date_time: 'datetime' },
};

/**
 * Tables that were in osquery's schema and are gone from 5.23.1's, with the first release without them
 * and what to use instead. Curated: found by comparing the published schemas of every version
 * (osquery/osquery-site src/data/osquery_schema_versions/) with 5.23.1's, then dated by the first
 * osquery release tag that contains the commit deleting the table's spec (osquery/osquery specs/).
 * Tables that became aliases (alf_services, hvci_status, yara) are above, not here.
 */
export const REMOVED_TABLES: Record<string, { removedIn: string; hint?: string }> = {
  atom_packages: { removedIn: '5.11.0' },
  elf_dynamic: { removedIn: '5.2.3' },
  elf_info: { removedIn: '5.2.3' },
  elf_sections: { removedIn: '5.2.3' },
  elf_segments: { removedIn: '5.2.3' },
  elf_symbols: { removedIn: '5.2.3' },
  kernel_integrity: { removedIn: '4.1.1', hint: 'it read the retired osquery kernel extension' },
  key_events: { removedIn: '2.10.4', hint: 'renamed user_interaction_events' },
  lldp_neighbors: { removedIn: '5.4.0' },
  opera_extensions: { removedIn: '4.7.0', hint: "chrome_extensions covers Opera (browser_type = 'opera')" },
  shortcut_files: { removedIn: '5.2.3' },
  smart_drive_info: { removedIn: '5.3.0' },
};
