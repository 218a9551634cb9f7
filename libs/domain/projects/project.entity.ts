import { Column, CreateDateColumn, Entity, PrimaryColumn, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

// No schema: search_path, set per transaction by the tenancy lib, chooses the tier's table.
@Entity({ name: 'projects' })
export class Project {
  @PrimaryColumn('uuid', { name: 'tenant_id' })
  tenantId: string;

  // Written as DEFAULT (gen_random_uuid()) and read back through INSERT … RETURNING.
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column('text')
  name: string;

  @Column('text', { nullable: true })
  description: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
