"""The smart-community platform link over MQTT: never in the safety path."""
