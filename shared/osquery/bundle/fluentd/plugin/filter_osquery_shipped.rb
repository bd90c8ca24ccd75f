# frozen_string_literal: true

# osquery-orchestrator: the log shipper's count (docs/log-cost.md). Per osquery_name, the lines and message
# bytes this fluentd handed to the Pub/Sub output since it started, stamped as `shipped` on each
# osquery_schedule snapshot record as it passes: the counts of everything before it, the snapshot itself
# counted after. logHeartbeat takes the differences between two snapshots of a host.
#
# Placed by the OS policy in fluentd's plugin directory (/etc/fluent/plugin for fluent-package v5) and used
# by conf.d/osquery.conf as `@type osquery_shipped`, after the identity filters and before the output.
#
# A message's size is counted as the output builds it (fluent-plugin-gcloud-pubsub-custom): the record
# without its attribute_keys, formatted by fluentd's json formatter (one JSON object and a newline), plus
# each attribute's key and value: shared/domain/log-volume.ts `messageBytes`. Oj (the formatter's
# generator) and Ruby's JSON write the same bytes for osquery's records (strings, integers, objects).
#
# The counting is plain Ruby (no fluentd), so `ruby` alone tests it (test/unit/fluentd-shipped.test.ts);
# the fluentd filter below it is a thin wrapper, defined only when fluentd loads this file.

require 'json'

module OsqueryOrchestrator
  # The counts of one shipper process.
  class ShippedCounter
    SHIPPED_FIELD = 'shipped'
    NAME_KEY = 'osquery_name'

    attr_reader :since

    # attribute_keys: the output's attribute_keys (moved out of the body into message attributes).
    # schedule_query: the osquery_schedule snapshot's name, the line that carries the counts.
    # since: when the shipper started, seconds since the epoch (a restart counts from zero).
    # newline: whether the output's formatter ends each message with a newline (fluentd's default).
    # max_queries: names counted at most (logHeartbeat refuses a `shipped` field naming more).
    def initialize(attribute_keys:, schedule_query:, since: Time.now.to_i, newline: true, max_queries: 1000)
      @attribute_keys = attribute_keys.map(&:to_s)
      @schedule_query = schedule_query
      @since = since
      @newline = newline
      @max_queries = max_queries
      @queries = {}
      # fluentd calls filters from each input's thread: the two tails may pass records at the same time.
      @lock = Mutex.new
    end

    # The record on its way to the output, counted; an osquery_schedule snapshot first stamped with the
    # counts of everything before it. Returns the record.
    def pass(record)
      name = record[NAME_KEY]
      @lock.synchronize do
        record[SHIPPED_FIELD] = stamp if name == @schedule_query
        count(name, message_bytes(record)) if name.is_a?(String) && !name.empty?
      end
      record
    end

    # { 'since' => ..., 'queries' => { name => { 'lines' => ..., 'bytes' => ... } } }, a copy.
    def stamp
      { 'since' => @since, 'queries' => @queries.transform_values(&:dup) }
    end

    # The Pub/Sub message the output makes of the record: data (the body without the attribute keys, as
    # JSON) and each attribute's key and value (a missing one is an empty value).
    def message_bytes(record)
      body = record.reject { |k, _| @attribute_keys.include?(k.to_s) }
      bytes = JSON.generate(body).bytesize + (@newline ? 1 : 0)
      @attribute_keys.each { |k| bytes += k.bytesize + record[k].to_s.bytesize }
      bytes
    end

    private

    def count(name, bytes)
      counter = @queries[name]
      unless counter
        return if @queries.size >= @max_queries

        counter = @queries[name] = { 'lines' => 0, 'bytes' => 0 }
      end
      counter['lines'] += 1
      counter['bytes'] += bytes
    end
  end
end

if defined?(Fluent::Plugin)
  require 'fluent/plugin/filter'

  module Fluent
    module Plugin
      # <filter osquery.**> @type osquery_shipped ... </filter>
      class OsqueryShippedFilter < Filter
        Fluent::Plugin.register_filter('osquery_shipped', self)

        desc 'The output attribute_keys: moved out of the message body into its attributes'
        config_param :attribute_keys, :array, value_type: :string
        desc 'The osquery_schedule snapshot query name: the line stamped with the counts'
        config_param :schedule_query, :string
        desc "Whether the output's formatter ends each message with a newline"
        config_param :add_newline, :bool, default: true

        def start
          super
          @counter = OsqueryOrchestrator::ShippedCounter.new(
            attribute_keys: @attribute_keys, schedule_query: @schedule_query, newline: @add_newline,
          )
        end

        def filter(_tag, _time, record)
          @counter.pass(record)
        rescue StandardError => e
          # Counting never costs a line: a record it cannot size ships uncounted.
          log.warn 'osquery_shipped: line not counted', error: e.message
          record
        end
      end
    end
  end
end
