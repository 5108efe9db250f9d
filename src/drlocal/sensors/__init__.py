"""What the car perceives: the front camera(s) and the LIDAR (contract §4.4, §4.5, §5)."""
