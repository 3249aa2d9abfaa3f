"""The collector: MQTT 5 shared subscriptions in, landing files out, acks after durability."""
